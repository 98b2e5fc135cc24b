package integration_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/informers"
	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/test/controlplane"
)

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// configMapCache starts a shared informer on ConfigMaps, as the engine does,
// and waits until it holds want objects labelled sel in ns.
func configMapCache(t *testing.T, ns, sel string, want int) host.Cache {
	t.Helper()
	reg, err := informers.NewRegistry(informers.Options{Config: cp.Config()})
	require.NoError(t, err)
	t.Cleanup(reg.Stop)
	inf, err := reg.Acquire(t.Context(), configMaps)
	require.NoError(t, err)
	require.NoError(t, inf.WaitForSync(t.Context()))
	require.Eventually(t, func() bool {
		objs, _, err := inf.List(ns, metav1.ListOptions{LabelSelector: sel})
		return err == nil && len(objs) == want
	}, time.Minute, 20*time.Millisecond)
	return host.CacheFunc(func(gvr schema.GroupVersionResource) (host.CacheReader, bool) { return inf, gvr == configMaps })
}

func TestListSelectorsAndPagingAgainstTheAPIServer(t *testing.T) {
	ns := controlplane.Namespace(t, cp)
	kube, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	for i := range 5 {
		_, err := kube.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Labels: map[string]string{"page": "yes"}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err = kube.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cache := configMapCache(t, ns, "page=yes", 5)

	// The same steps read from the informer cache, then live from the API
	// server: the two implement selectors and continue tokens separately.
	var steps []step
	for _, live := range []bool{false, true} {
		list := func(f func(*abi.Request)) *abi.Request {
			return with(cm(ns, ""), func(r *abi.Request) { r.Live = live; f(r) })
		}
		steps = append(steps,
			// A field selector on the name: one item, that one.
			step{Op: abi.OpList, Req: list(func(r *abi.Request) { r.FieldSelector = "metadata.name=p3" }), WantItems: ptr(1), ItemsContain: "p3"},
			// Combined with a label selector that excludes it: none.
			step{Op: abi.OpList, Req: list(func(r *abi.Request) { r.FieldSelector, r.LabelSelector = "metadata.name=unlabelled", "page=yes" }), WantItems: ptr(0)},
			// Negated: every labelled one but p3.
			step{Op: abi.OpList, Req: list(func(r *abi.Request) { r.FieldSelector, r.LabelSelector = "metadata.name!=p3", "page=yes" }), WantItems: ptr(4)},
			// Two at a time: pages of 2, 2 and 1, no item twice.
			step{Op: abi.OpList, Req: list(func(r *abi.Request) { r.LabelSelector, r.Limit = "page=yes", 2 }), AllPages: true, WantPages: ptr(3), WantItems: ptr(5)},
			// Only the first page without following continue.
			step{Op: abi.OpList, Req: list(func(r *abi.Request) { r.LabelSelector, r.Limit = "page=yes", 2 }), WantItems: ptr(2), ItemsContain: "p"},
			// A malformed token: BadRequest, not a restart from the top.
			step{Op: abi.OpList, Req: list(func(r *abi.Request) { r.LabelSelector, r.Limit, r.Continue = "page=yes", 2, "not-a-token" }), Want: 400, WantReason: "BadRequest"},
		)
	}
	m, _ := module(t, ns, steps, host.ModuleOptions{Cache: cache})
	require.NoError(t, reconcileOnce(t, m, ns, "p0"))
}

func TestDeleteAndApplyAgainstTheAPIServer(t *testing.T) {
	ns := controlplane.Namespace(t, cp)
	kube, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	cms := kube.CoreV1().ConfigMaps(ns)
	ctx := t.Context()

	// A ConfigMap with a stale and a current resourceVersion.
	v1, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "versioned"}, Data: map[string]string{"v": "1"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	v1.Data["v"] = "2"
	v2, err := cms.Update(ctx, v1.DeepCopy(), metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NotEqual(t, v1.ResourceVersion, v2.ResourceVersion)

	// Parents with one child each, for the three propagation policies. The
	// foreground child holds a finalizer, so its parent stays visibly in
	// foreground deletion until the test lets the child go.
	parent := func(name string) *corev1.ConfigMap {
		p, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
		child := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-child", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: p.Name, UID: p.UID, BlockOwnerDeletion: ptr(true),
		}}}}
		if name == "foreground" {
			child.Finalizers = []string{"hosttest.wre.dev/hold"}
		}
		_, err = cms.Create(ctx, child, metav1.CreateOptions{})
		require.NoError(t, err)
		return p
	}
	for _, name := range []string{"orphan", "background", "foreground"} {
		parent(name)
	}

	// A server-side apply body as a Go guest sends it: the protobuf of a typed
	// object (no TypeMeta; the request carries the kind).
	applied, err := (&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "applied"}, Data: map[string]string{"from": "protobuf"}}).Marshal()
	require.NoError(t, err)
	renamed, err := (&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"}}).Marshal()
	require.NoError(t, err)
	apply := func(name string, body []byte, f func(*abi.Request)) *abi.Request {
		return with(cm(ns, name), func(r *abi.Request) {
			r.PatchType, r.ContentType, r.Body = abi.PatchApply, abi.ContentTypeProtobuf, body
			f(r)
		})
	}
	deleteReq := func(name string, f func(*abi.Request)) *abi.Request { return with(cm(ns, name), f) }
	live := func(name string) *abi.Request { return with(cm(ns, name), func(r *abi.Request) { r.Live = true }) }

	m, _ := module(t, ns, []step{
		// 0: a stale resourceVersion precondition: Conflict, nothing deleted.
		{Op: abi.OpDelete, Req: deleteReq("versioned", func(r *abi.Request) { r.PreconditionResourceVersion = v1.ResourceVersion }), Want: 409, WantReason: "Conflict"},
		{Op: abi.OpGet, Req: live("versioned")},
		// 2: the current one deletes it.
		{Op: abi.OpDelete, Req: deleteReq("versioned", func(r *abi.Request) { r.PreconditionResourceVersion = v2.ResourceVersion })},
		{Op: abi.OpGet, Req: live("versioned"), Want: 404, WantReason: "NotFound"},
		// 4-7: propagation policies; an unknown one is refused by the host.
		{Op: abi.OpDelete, Req: deleteReq("orphan", func(r *abi.Request) { r.PropagationPolicy = "Orphan" })},
		{Op: abi.OpDelete, Req: deleteReq("background", func(r *abi.Request) { r.PropagationPolicy = "Background" })},
		{Op: abi.OpDelete, Req: deleteReq("foreground", func(r *abi.Request) { r.PropagationPolicy = "Foreground" })},
		{Op: abi.OpDelete, Req: deleteReq("foreground-child", func(r *abi.Request) { r.PropagationPolicy = "Sideways" }), Want: 400, WantReason: "BadRequest"},
		// 8: server-side apply of a protobuf body creates the object.
		{Op: abi.OpPatch, Req: apply("applied", applied, func(*abi.Request) {}), BodyContains: "protobuf"},
		// 9: the field manager may only be the module's own name.
		{Op: abi.OpPatch, Req: apply("applied", applied, func(r *abi.Request) { r.FieldManager = "someone-else" }), Want: 400, WantReason: "BadRequest"},
		{Op: abi.OpPatch, Req: apply("applied", applied, func(r *abi.Request) { r.FieldManager = "itest" }), BodyContains: "protobuf"},
		// 11: a body naming another object than the request.
		{Op: abi.OpPatch, Req: apply("applied", renamed, func(*abi.Request) {}), Want: 400, WantReason: "BadRequest"},
	}, host.ModuleOptions{})
	require.NoError(t, reconcileOnce(t, m, ns, "versioned"))

	// Orphan: the child stays, without its owner reference. Background: the
	// garbage collector deletes the child.
	require.Eventually(t, func() bool {
		child, err := cms.Get(ctx, "orphan-child", metav1.GetOptions{})
		_, parentErr := cms.Get(ctx, "orphan", metav1.GetOptions{})
		return err == nil && len(child.OwnerReferences) == 0 && apierrors.IsNotFound(parentErr)
	}, time.Minute, 50*time.Millisecond, "Orphan keeps the child and removes its owner reference")
	require.Eventually(t, func() bool {
		_, err := cms.Get(ctx, "background-child", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, time.Minute, 50*time.Millisecond, "Background lets the garbage collector delete the child")
	// Foreground: the parent waits, marked, for its child to go.
	require.Eventually(t, func() bool {
		child, err := cms.Get(ctx, "foreground-child", metav1.GetOptions{})
		return err == nil && child.DeletionTimestamp != nil
	}, time.Minute, 50*time.Millisecond, "Foreground deletes the child first")
	p, err := cms.Get(ctx, "foreground", metav1.GetOptions{})
	require.NoError(t, err, "the parent of a foreground deletion waits for its child")
	assert.NotNil(t, p.DeletionTimestamp)
	assert.Contains(t, p.Finalizers, metav1.FinalizerDeleteDependents)
	_, err = cms.Patch(ctx, "foreground-child", "application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := cms.Get(ctx, "foreground", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, time.Minute, 50*time.Millisecond, "the parent goes after its child")

	// The applied object: its fields are owned by the module, through Apply.
	got, err := cms.Get(ctx, "applied", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"from": "protobuf"}, got.Data)
	var appliers []string
	for _, f := range got.ManagedFields {
		if f.Operation == metav1.ManagedFieldsOperationApply {
			appliers = append(appliers, f.Manager)
			require.NotNil(t, f.FieldsV1)
			assert.Contains(t, f.FieldsV1.GetRawString(), `"f:from"`)
		}
	}
	assert.Equal(t, []string{"itest"}, appliers, "server-side apply uses the module name as field manager")
	assert.False(t, slices.ContainsFunc(got.ManagedFields, func(f metav1.ManagedFieldsEntry) bool { return strings.Contains(f.Manager, "someone-else") }))
}
