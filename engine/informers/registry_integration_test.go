package informers_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/handler"
	"github.com/wre-dev/wre/engine/informers"
	"github.com/wre-dev/wre/engine/metrics/metricstest"
	"github.com/wre-dev/wre/engine/queue"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunMain(m, &cp)) }

// How long the API server may take to deliver what a test waits for.
const (
	apiWait = 30 * time.Second
	apiTick = 50 * time.Millisecond
)

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// queued records requests of one namespace, as a controller's queue would get them.
type queued struct {
	namespace string
	mu        sync.Mutex
	got       []string
}

func (q *queued) AddWithPriority(req reconcile.Request, p queue.Priority) {
	if req.Namespace != q.namespace {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.got = append(q.got, req.Name+"@"+priorityName(p))
}

// has reports whether every want was enqueued.
func (q *queued) has(want ...string) func() bool {
	return func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		for _, w := range want {
			if !slices.Contains(q.got, w) {
				return false
			}
		}
		return true
	}
}

func priorityName(p queue.Priority) string {
	switch p {
	case queue.PriorityLow:
		return "low"
	case queue.PriorityNormal:
		return "normal"
	default:
		return "other"
	}
}

// newRegistry returns a registry on the control plane, stopped at cleanup.
func newRegistry(t *testing.T) *informers.Registry {
	t.Helper()
	r, err := informers.NewRegistry(informers.Options{Config: cp.Config()})
	require.NoError(t, err)
	t.Cleanup(r.Stop)
	return r
}

func TestIntegrationBuiltInResource(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	client, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	cms := client.CoreV1().ConfigMaps(ns)
	_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before", Labels: map[string]string{"app": "web"}}}, metav1.CreateOptions{})
	require.NoError(t, err)

	r := newRegistry(t)
	inf, err := r.Acquire(ctx, configMaps)
	require.NoError(t, err)
	require.NoError(t, inf.WaitForSync(ctx))
	assert.True(t, inf.Typed())
	// Informers on clients of their own report their watch.
	gatherer := prometheus.NewRegistry()
	gatherer.MustRegister(r.Collector())
	series := map[string]string{"group": "", "version": "v1", "resource": "configmaps"}
	assert.Equal(t, 1.0, metricstest.Value(t, gatherer, "wre_informer_watch_connected", series))
	assert.Equal(t, 0.0, metricstest.Value(t, gatherer, "wre_informer_watch_down_seconds", series))

	q := &queued{namespace: ns}
	reg, err := inf.AddEventHandler(handler.ForObject(q))
	require.NoError(t, err)
	defer func() { assert.NoError(t, inf.RemoveEventHandler(reg)) }()
	require.Eventually(t, q.has("before@low"), apiWait, apiTick, "initial list at low priority")

	obj, err := inf.Get(ns, "before")
	require.NoError(t, err)
	cm, ok := obj.(*corev1.ConfigMap)
	require.True(t, ok, "built-ins are typed, got %T", obj)
	assert.Equal(t, "ConfigMap", cm.Kind)
	assert.Equal(t, "v1", cm.APIVersion)
	assert.Empty(t, cm.ManagedFields, "managed fields are not cached")
	fromServer, err := cms.Get(ctx, "before", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, fromServer.ManagedFields, "the server tracks them")

	// Live events through the real watch.
	live, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "live", Labels: map[string]string{"app": "db"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, q.has("live@normal"), apiWait, apiTick)
	live.Data = map[string]string{"k": "v"}
	_, err = cms.Update(ctx, live, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		obj, err := inf.Get(ns, "live")
		return err == nil && obj.(*corev1.ConfigMap).Data["k"] == "v"
	}, apiWait, apiTick, "the cache follows updates")

	items, _, err := inf.List(ns, metav1.ListOptions{LabelSelector: "app"})
	require.NoError(t, err)
	assert.Equal(t, []string{"before", "live"}, objectNames(t, items))
	items, _, err = inf.List("", metav1.ListOptions{FieldSelector: "metadata.namespace=" + ns + ",metadata.name=live"})
	require.NoError(t, err)
	assert.Equal(t, []string{"live"}, objectNames(t, items))

	require.NoError(t, cms.Delete(ctx, "before", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := inf.Get(ns, "before")
		return apierrors.IsNotFound(err)
	}, apiWait, apiTick, "the cache follows deletes")
	assert.Eventually(t, q.has("before@normal"), apiWait, apiTick, "delete enqueued")
}

func TestIntegrationOwnedResources(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	client, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	cms := client.CoreV1().ConfigMaps(ns)

	r := newRegistry(t)
	inf, err := r.Acquire(ctx, configMaps)
	require.NoError(t, err)
	require.NoError(t, inf.WaitForSync(ctx))
	q := &queued{namespace: ns}
	reg, err := inf.AddEventHandler(handler.ForOwner(q, corev1.SchemeGroupVersion.WithKind("ConfigMap"), true))
	require.NoError(t, err)
	defer func() { assert.NoError(t, inf.RemoveEventHandler(reg)) }()

	owner, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "child", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true),
	}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, q.has("owner@normal"), apiWait, apiTick, "a child's add enqueues its owner")
	require.Eventually(t, func() bool {
		children, err := inf.ByOwner(owner.UID)
		return err == nil && len(children) == 1
	}, apiWait, apiTick)

	// Deleting the owner lets the garbage collector delete the child; the
	// child's delete arrives through the watch and maps to the owner again.
	q.mu.Lock()
	q.got = nil
	q.mu.Unlock()
	require.NoError(t, cms.Delete(ctx, owner.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}))
	require.Eventually(t, func() bool {
		_, err := inf.Get(ns, "child")
		return apierrors.IsNotFound(err)
	}, apiWait, apiTick, "garbage collector removed the child")
	assert.Eventually(t, q.has("owner@normal"), apiWait, apiTick)
}

func TestIntegrationCustomResourceInstalledLater(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	r := newRegistry(t)
	widgets := schema.GroupVersionResource{Group: "informers.wre.dev", Version: "v1", Resource: "widgets"}

	_, err := r.Acquire(ctx, widgets)
	require.Error(t, err)
	require.True(t, meta.IsNoMatchError(err), "not installed yet: %v", err)

	installCRD(t, widgets)
	var inf *informers.Informer
	require.Eventually(t, func() bool {
		inf, err = r.Acquire(ctx, widgets)
		return err == nil
	}, apiWait, apiTick, "discovery is refreshed on a miss")
	defer r.Release(widgets)
	require.NoError(t, inf.WaitForSync(ctx))
	assert.False(t, inf.Typed())
	assert.True(t, inf.Namespaced())
	assert.Equal(t, "Widget", inf.GVK().Kind)

	dyn, err := dynamic.NewForConfig(cp.Config())
	require.NoError(t, err)
	w := &unstructured.Unstructured{}
	w.SetAPIVersion("informers.wre.dev/v1")
	w.SetKind("Widget")
	w.SetName("w1")
	_, err = dyn.Resource(widgets).Namespace(ns).Create(ctx, w, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		obj, err := inf.Get(ns, "w1")
		if err != nil {
			return false
		}
		u, ok := obj.(*unstructured.Unstructured)
		return ok && u.GetKind() == "Widget" && u.GetManagedFields() == nil
	}, apiWait, apiTick)
}

func TestIntegrationReleaseAndReacquire(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	client, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	r := newRegistry(t)

	first, err := r.Acquire(ctx, configMaps)
	require.NoError(t, err)
	require.NoError(t, first.WaitForSync(ctx))
	r.Release(configMaps)
	_, err = first.Get(ns, "x")
	require.ErrorIs(t, err, informers.ErrStopped)

	_, err = client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "while-released"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	second, err := r.Acquire(ctx, configMaps)
	require.NoError(t, err)
	defer r.Release(configMaps)
	require.NoError(t, second.WaitForSync(ctx))
	_, err = second.Get(ns, "while-released")
	assert.NoError(t, err, "a new informer lists again")
}

// installCRD installs a namespaced CRD for gvr, waits until it is established
// and removes it at cleanup.
func installCRD(t *testing.T, gvr schema.GroupVersionResource) {
	t.Helper()
	ctx := t.Context()
	client, err := apiextensions.NewForConfig(cp.Config())
	require.NoError(t, err)
	kind := strings.ToUpper(gvr.Resource[:1]) + strings.TrimSuffix(gvr.Resource[1:], "s")
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: gvr.Resource + "." + gvr.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: gvr.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: gvr.Resource, Kind: kind, ListKind: kind + "List"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: gvr.Version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
	_, err = client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = client.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
	})
	require.Eventually(t, func() bool {
		got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return true
			}
		}
		return false
	}, apiWait, apiTick, "CRD established")
}

// objectNames returns the names of objs.
func objectNames(t *testing.T, objs []runtime.Object) []string {
	t.Helper()
	out := make([]string, 0, len(objs))
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		require.NoError(t, err)
		out = append(out, m.GetName())
	}
	return out
}
