// Package integration_test exercises the host calls against a real local
// control plane (etcd, kube-apiserver, kube-controller-manager): the
// behaviour under test there is the API server's (server-side apply,
// preconditions, conflicts, status subresources, events).
package integration_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/internal/guestscript"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
	"github.com/wre-dev/wre/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunMain(m, &cp)) }

type step = guestscript.Step

var gadgets = schema.GroupVersionResource{Group: "hosttest.wre.dev", Version: "v1", Resource: "gadgets"}

func installCRD(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	client, err := apiextensionsclient.NewForConfig(cp.Config())
	require.NoError(t, err)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.hosttest.wre.dev"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: gadgets.Group, Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr(true),
				}},
			}},
		},
	}
	_, err = client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}))
}

// eventRecorder returns a client and a recorder that writes events to the
// control plane.
func eventRecorder(t *testing.T) (*kubernetes.Clientset, record.EventRecorder) {
	kube, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	broadcaster := record.NewBroadcaster(record.WithContext(t.Context()))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	return kube, broadcaster.NewRecorder(clientscheme.Scheme, corev1.EventSource{Component: "wre"})
}

func ptr[T any](v T) *T { return &v }

func cm(ns, name string) *abi.Request {
	return &abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: ns, Name: name}
}

func with(r *abi.Request, f func(*abi.Request)) *abi.Request { f(r); return r }

// module starts the script guest in a host wired to the control plane.
func module(t *testing.T, ns string, steps []step, opts host.ModuleOptions) (*host.Module, *host.Runtime) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	cfg, err := json.Marshal(guestscript.Script{Steps: steps})
	require.NoError(t, err)
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: wasmtest.DefaultCacheDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close(ctx) })
	compiled, err := rt.Compile(ctx, "itest", wasmtest.Build(t, "../testdata/guests/script"))
	require.NoError(t, err)
	client, err := dynamic.NewForConfig(cp.Config())
	require.NoError(t, err)
	opts.Name, opts.Client, opts.Config = "itest", client, cfg
	opts.Primary, opts.PrimaryKind = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ConfigMap"
	if opts.Permissions == nil {
		opts.Permissions = host.Permissions{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}, Namespaces: []string{ns}}}
	}
	m, err := rt.NewModule(ctx, compiled, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(ctx) })
	return m, rt
}

func reconcileOnce(t *testing.T, m *host.Module, ns, name string) error {
	_, err := m.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	return err
}

func TestObjectCallsAgainstTheAPIServer(t *testing.T) {
	ns := controlplane.Namespace(t, cp)
	kube, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	_, err = kube.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Data: map[string]string{"owned": "by-someone-else"},
	}, metav1.CreateOptions{FieldManager: "someone-else"})
	require.NoError(t, err)

	m, _ := module(t, ns, []step{
		// 0-1: create, then again: AlreadyExists.
		{Op: abi.OpCreate, Req: with(cm(ns, ""), func(r *abi.Request) {
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"metadata":{"name":"a","labels":{"set":"x"}},"data":{"k":"v"}}`)
		}), Want: 201},
		{Op: abi.OpCreate, Req: with(cm(ns, ""), func(r *abi.Request) {
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"metadata":{"name":"a"}}`)
		}), Want: 409, WantReason: "AlreadyExists"},
		// 2: get as protobuf; 3: update with those protobuf bytes.
		{Op: abi.OpGet, Req: cm(ns, "a"), BodyContains: "v"},
		{Op: abi.OpUpdate, Req: with(cm(ns, "a"), func(r *abi.Request) { r.ContentType = abi.ContentTypeProtobuf }), UseBodyOf: ptr(2)},
		// 4-6: merge, JSON and strategic-merge patches.
		{Op: abi.OpPatch, Req: with(cm(ns, "a"), func(r *abi.Request) { r.PatchType, r.Body = abi.PatchMerge, []byte(`{"data":{"m":"1"}}`) })},
		{Op: abi.OpPatch, Req: with(cm(ns, "a"), func(r *abi.Request) {
			r.PatchType, r.Body = abi.PatchJSON, []byte(`[{"op":"add","path":"/data/j","value":"1"}]`)
		})},
		{Op: abi.OpPatch, Req: with(cm(ns, "a"), func(r *abi.Request) { r.PatchType, r.Body = abi.PatchStrategicMerge, []byte(`{"data":{"s":"1"}}`) })},
		// 7: the bytes of step 2 are stale now: Conflict.
		{Op: abi.OpUpdate, Req: with(cm(ns, "a"), func(r *abi.Request) { r.ContentType = abi.ContentTypeProtobuf }), UseBodyOf: ptr(2), Want: 409, WantReason: "Conflict"},
		// 8: server-side apply of a field another manager owns: Conflict; 9: forced.
		{Op: abi.OpPatch, Req: with(cm(ns, "theirs"), func(r *abi.Request) {
			r.PatchType, r.Body = abi.PatchApply, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"theirs"},"data":{"owned":"by-module"}}`)
		}), Want: 409, WantReason: "Conflict"},
		{Op: abi.OpPatch, Req: with(cm(ns, "theirs"), func(r *abi.Request) {
			r.PatchType, r.Force = abi.PatchApply, true
			r.Body = []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"theirs"},"data":{"owned":"by-module"}}`)
		}), BodyContains: "by-module"},
		// 10: list with a label selector and a limit.
		{Op: abi.OpList, Req: with(cm(ns, ""), func(r *abi.Request) { r.LabelSelector, r.Limit = "set=x", 5 }), WantItems: ptr(1)},
		// 11: dry-run create leaves nothing behind (checked below).
		{Op: abi.OpCreate, Req: with(cm(ns, ""), func(r *abi.Request) {
			r.ContentType, r.Body, r.DryRun = abi.ContentTypeJSON, []byte(`{"metadata":{"name":"dry"}}`), true
		}), Want: 201},
		// 12: delete with a wrong UID precondition: Conflict; 13: delete; 14: gone.
		{Op: abi.OpDelete, Req: with(cm(ns, "theirs"), func(r *abi.Request) { r.PreconditionUID = "00000000-0000-0000-0000-000000000000" }), Want: 409},
		{Op: abi.OpDelete, Req: with(cm(ns, "theirs"), func(r *abi.Request) { r.PropagationPolicy = "Background" })},
		{Op: abi.OpGet, Req: cm(ns, "theirs"), Want: 404, WantReason: "NotFound"},
		// 15: outside the granted namespace: Forbidden before the API server.
		{Op: abi.OpGet, Req: cm("kube-system", "extension-apiserver-authentication"), Want: 403, WantReason: "Forbidden"},
	}, host.ModuleOptions{})
	require.NoError(t, reconcileOnce(t, m, ns, "a"))

	got, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), "a", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"k": "v", "m": "1", "j": "1", "s": "1"}, got.Data)
	managers := map[string]bool{}
	for _, f := range got.ManagedFields {
		managers[f.Manager] = true
	}
	assert.True(t, managers["itest"], "writes use the module name as field manager: %v", managers)
	_, err = kube.CoreV1().ConfigMaps(ns).Get(t.Context(), "dry", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "dry run must not persist: %v", err)
}

func TestStatusAndEventsAgainstTheAPIServer(t *testing.T) {
	installCRD(t)
	ns := controlplane.Namespace(t, cp)
	kube, recorder := eventRecorder(t)

	gadget := func(r *abi.Request) {
		r.Group, r.Version, r.Resource, r.Kind, r.Namespace = gadgets.Group, gadgets.Version, gadgets.Resource, "Gadget", ns
	}
	m, _ := module(t, ns, []step{
		{Op: abi.OpCreate, Req: with(&abi.Request{}, func(r *abi.Request) {
			gadget(r)
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"apiVersion":"hosttest.wre.dev/v1","kind":"Gadget","metadata":{"name":"g"},"spec":{"desired":"on"}}`)
		}), Want: 201},
		// The main resource ignores status; the status subresource takes it.
		{Op: abi.OpPatch, Req: with(&abi.Request{Name: "g"}, func(r *abi.Request) {
			gadget(r)
			r.PatchType, r.Body = abi.PatchMerge, []byte(`{"status":{"current":"main"}}`)
		}), BodyContains: `"spec":{"desired":"on"}`},
		{Op: abi.OpStatusPatch, Req: with(&abi.Request{Name: "g"}, func(r *abi.Request) {
			gadget(r)
			r.PatchType, r.Body = abi.PatchMerge, []byte(`{"status":{"current":"on"}}`)
		}), BodyContains: `"status":{"current":"on"}`},
		{Op: abi.OpGet, Req: with(&abi.Request{Name: "g", Live: true}, gadget), BodyContains: `"current":"on"`},
		{Op: abi.OpStatusUpdate, Req: with(&abi.Request{Name: "g"}, gadget), UseBodyOf: ptr(3), BodyContains: `"current":"on"`},
		{Op: abi.OpEvent, Req: with(&abi.Request{Name: "g", EventType: "Normal", EventReason: "Switched", EventMessage: "gadget is on"}, gadget)},
	}, host.ModuleOptions{Recorder: recorder})
	require.NoError(t, reconcileOnce(t, m, ns, "g"))

	dyn, err := dynamic.NewForConfig(cp.Config())
	require.NoError(t, err)
	g, err := dyn.Resource(gadgets).Namespace(ns).Get(t.Context(), "g", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"current": "on"}, g.Object["status"])
	require.Eventually(t, func() bool {
		evs, err := kube.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "reason=Switched"})
		return err == nil && len(evs.Items) == 1 && evs.Items[0].InvolvedObject.UID == g.GetUID() && evs.Items[0].Message == "gadget is on"
	}, time.Minute, 50*time.Millisecond)
}

func TestTimeoutThenGoodReconcileAgainstTheAPIServer(t *testing.T) {
	ns := controlplane.Namespace(t, cp)
	kube, recorder := eventRecorder(t)
	x, err := kube.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	spin, _ := module(t, ns, []step{{Loop: true}}, host.ModuleOptions{ReconcileTimeout: 500 * time.Millisecond, Recorder: recorder})
	err = reconcileOnce(t, spin, ns, "x")
	require.ErrorContains(t, err, "timeout")
	// The Warning event carries the object's UID, so kubectl describe shows it.
	require.Eventually(t, func() bool {
		evs, err := kube.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "reason=ReconcileTrapped"})
		return err == nil && len(evs.Items) == 1 && evs.Items[0].InvolvedObject.UID == x.UID && evs.Items[0].Type == corev1.EventTypeWarning
	}, time.Minute, 50*time.Millisecond)
	m, _ := module(t, ns, []step{
		{Op: abi.OpCreate, Req: with(cm(ns, ""), func(r *abi.Request) {
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"metadata":{"name":"after-timeout"}}`)
		}), Want: 201},
		{Op: abi.OpGet, Req: cm(ns, "after-timeout")},
	}, host.ModuleOptions{})
	require.NoError(t, reconcileOnce(t, m, ns, "x"))
}
