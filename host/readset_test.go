package host_test

import (
	"fmt"
	goruntime "runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

// changeConfigMap updates ns/name in the fixture cluster (and so in its cache).
func changeConfigMap(t *testing.T, h *wasmtest.Harness, ns, name string, change func(cm *corev1.ConfigMap)) {
	t.Helper()
	ri := h.Client.Resource(configMaps).Namespace(ns)
	u, err := ri.Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	var cm corev1.ConfigMap
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cm))
	change(&cm)
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cm)
	require.NoError(t, err)
	_, err = ri.Update(t.Context(), &unstructured.Unstructured{Object: obj}, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// bump is the resourceVersion change every update brings (the fake client
// does not make one).
func bump(cm *corev1.ConfigMap) { cm.ResourceVersion += "1" }

func reconcileRequest(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

func reads(t *testing.T, h *wasmtest.Harness, ns, name string) *host.ReadSet {
	t.Helper()
	res, rs, err := h.Module.ReconcileReads(t.Context(), reconcileRequest(ns, name))
	require.NoError(t, err)
	require.True(t, res.IsZero())
	require.NotNil(t, rs)
	return rs
}

func TestReadSetOfProjectedReads(t *testing.T) {
	objs := func() []runtime.Object {
		return []runtime.Object{
			typedConfigMap("b", map[string]string{"app": "web"}, map[string]string{"k": "v"}),
			typedConfigMap("c", map[string]string{"app": "db"}, nil),
		}
	}
	tests := []struct {
		name   string
		object string
		change func(t *testing.T, h *wasmtest.Harness)
		want   string // "" when the read set still holds
	}{
		{"nothing changed", "list-a", func(*testing.T, *wasmtest.Harness) {}, ""},
		{"an unread field of the primary", "list-a", func(t *testing.T, h *wasmtest.Harness) {
			changeConfigMap(t, h, "ns", "list-a", func(cm *corev1.ConfigMap) { bump(cm); cm.Annotations = map[string]string{"x": "y"} })
		}, ""},
		{"a read field of the primary", "list-a", func(t *testing.T, h *wasmtest.Harness) {
			changeConfigMap(t, h, "ns", "list-a", func(cm *corev1.ConfigMap) { cm.Data = map[string]string{"new": "1"} })
		}, "get configmaps ns/list-a: changed"},
		{"the primary deleted", "list-a", func(t *testing.T, h *wasmtest.Harness) {
			require.NoError(t, h.Client.Resource(configMaps).Namespace("ns").Delete(t.Context(), "list-a", metav1.DeleteOptions{}))
		}, "get configmaps ns/list-a: deleted"},
		{"an unread field of a listed object", "list-a", func(t *testing.T, h *wasmtest.Harness) {
			changeConfigMap(t, h, "ns", "b", func(cm *corev1.ConfigMap) { bump(cm); cm.Annotations = map[string]string{"x": "y"} })
		}, ""},
		{"a read field of a listed object", "list-a", func(t *testing.T, h *wasmtest.Harness) {
			changeConfigMap(t, h, "ns", "b", func(cm *corev1.ConfigMap) { cm.Data["k"] = "w" })
		}, "list configmaps in ns labels=app=web: objects joined, left or changed"},
		{"an object newly matches the selector", "list-a", func(t *testing.T, h *wasmtest.Harness) {
			changeConfigMap(t, h, "ns", "c", func(cm *corev1.ConfigMap) { cm.Labels["app"] = "web" })
		}, "list configmaps in ns labels=app=web: objects joined, left or changed"},
		{"an object stops matching the selector", "list-a", func(t *testing.T, h *wasmtest.Harness) {
			changeConfigMap(t, h, "ns", "b", func(cm *corev1.ConfigMap) { cm.Labels["app"] = "db" })
		}, "list configmaps in ns labels=app=web: objects joined, left or changed"},
		{"a listed object deleted", "list-a", func(t *testing.T, h *wasmtest.Harness) {
			require.NoError(t, h.Client.Resource(configMaps).Namespace("ns").Delete(t.Context(), "b", metav1.DeleteOptions{}))
		}, "list configmaps in ns labels=app=web: objects joined, left or changed"},
		{"a not-found object created", "missing-x", func(t *testing.T, h *wasmtest.Harness) {
			_, err := h.Client.Resource(configMaps).Namespace("ns").Create(t.Context(), unstructuredConfigMap("ns", "does-not-exist"), metav1.CreateOptions{})
			require.NoError(t, err)
		}, "get configmaps ns/does-not-exist: created"},
		{"a not-found object still missing", "missing-x", func(t *testing.T, h *wasmtest.Harness) {
			changeConfigMap(t, h, "ns", "b", func(cm *corev1.ConfigMap) { cm.Data["k"] = "w" })
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := runLean(t, nil, append(objs(), typedConfigMap(tt.object, map[string]string{"app": "web"}, nil))...)
			rs := reads(t, h, "ns", tt.object)
			require.True(t, rs.Reusable(), rs.Effect())
			require.Equal(t, 2, rs.Len(), "the primary object and one get or list")
			require.Empty(t, h.Module.Changed(rs))
			assert.False(t, rs.Gone())
			tt.change(t, h)
			assert.Equal(t, tt.want, h.Module.Changed(rs))
		})
	}
}

func unstructuredConfigMap(ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func TestReadSetOfAGoneObject(t *testing.T) {
	h := runLean(t, nil)
	rs := reads(t, h, "ns", "other")
	assert.True(t, rs.Reusable())
	assert.True(t, rs.Gone())
	assert.False(t, (*host.ReadSet)(nil).Gone())

	v1 := run(t, script{}, wasmtest.Options{Cached: []schema.GroupVersionResource{configMaps}})
	rs = reads(t, v1, "ns", "a")
	assert.True(t, rs.Gone(), "the primary of a whole-object module")
}

func TestReadSetWithEffectsIsNotReusable(t *testing.T) {
	h := runLean(t, nil, typedConfigMap("copy-a", nil, map[string]string{"k": "v"}))
	rs := reads(t, h, "ns", "copy-a")
	assert.False(t, rs.Reusable())
	assert.Equal(t, "apply", rs.Effect())
	assert.Equal(t, "not reusable: apply", h.Module.Changed(rs))
	assert.Equal(t, "not reusable: no read set", h.Module.Changed(nil))
}

func TestReadSetOfUncachedPrimaryIsNotReusable(t *testing.T) {
	h := wasmtest.New(t, leanGuest(t), wasmtest.Options{Objects: []runtime.Object{typedConfigMap("other", nil, nil)}})
	rs := reads(t, h, "ns", "other")
	assert.Equal(t, "live get of configmaps", rs.Effect())
}

// TestReadSetOfWholeObjects checks ABI v1 (and v2 without projection)
// reads: whole objects, fingerprinted by resourceVersion; a live read, a
// paged list, a failed call and a write each make the read set not reusable.
func TestReadSetOfWholeObjects(t *testing.T) {
	get := func(name string) step {
		return step{Op: abi.OpGet, Req: with(cmReq("ns", name), func(r *abi.Request) { r.Accept = abi.ContentTypeJSON })}
	}
	list := step{Op: abi.OpList, Req: with(cmReq("ns", ""), func(r *abi.Request) { r.LabelSelector = "app=a" })}
	tests := []struct {
		name   string
		steps  []step
		effect string
	}{
		{"get and list", []step{get("b"), list}, ""},
		{"live get", []step{with1(get("b"), func(r *abi.Request) { r.Live = true })}, "live get of configmaps"},
		{"paged list", []step{with1(list, func(r *abi.Request) { r.Limit = 1 })}, "list configmaps in ns labels=app=a: paged"},
		{"forbidden get", []step{{Op: abi.OpGet, Req: &abi.Request{Version: "v1", Resource: "secrets", Kind: "Secret", Namespace: "ns", Name: "s"}, Want: 403}}, "get failed: 403 Forbidden"},
		{"write", []step{{Op: abi.OpDelete, Req: cmReq("ns", "b")}}, "delete"},
		{"event", []step{{Op: abi.OpEvent, Req: &abi.Request{EventType: "Normal", EventReason: "R"}}}, "event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []runtime.Object{configMap("ns", "a", nil), configMap("ns", "b", nil)}
			h := run(t, script{Steps: tt.steps}, wasmtest.Options{Objects: objs, Cached: []schema.GroupVersionResource{configMaps}})
			rs := reads(t, h, "ns", "a")
			assert.Equal(t, tt.effect, rs.Effect())
			if tt.effect != "" {
				return
			}
			assert.Equal(t, 3, rs.Len(), "primary, get and list")
			assert.Equal(t, 3, rs.Objects())
			assert.Empty(t, h.Module.Changed(rs))
			changeConfigMap(t, h, "ns", "b", bump)
			assert.Equal(t, "get configmaps ns/b: changed", h.Module.Changed(rs), "a whole object changes with its resourceVersion")
		})
	}
}

func with1(s step, f func(r *abi.Request)) step {
	r := *s.Req
	f(&r)
	s.Req = &r
	return s
}

// BenchmarkReadSetRetained reports the heap a held read set retains
// (retained-B/readset), for the figures in docs/operations.md: a primary
// object alone, with a get that found nothing, and with a list of 10.
func BenchmarkReadSetRetained(b *testing.B) {
	var objs []runtime.Object
	for i := range 9 {
		objs = append(objs, typedConfigMap(fmt.Sprintf("web-%d", i), map[string]string{"app": "web"}, nil))
	}
	for _, name := range []string{"other", "missing-a", "list-a"} {
		b.Run(name, func(b *testing.B) {
			h := wasmtest.New(b, leanGuest(b), wasmtest.Options{
				Objects: append(objs, typedConfigMap(name, map[string]string{"app": "web"}, nil)),
				Cached:  []schema.GroupVersionResource{configMaps},
			})
			// The fixture's fake client retains every call it serves:
			// the same reconciles without read sets are the baseline.
			retained := func(hold bool) float64 {
				held := make([]*host.ReadSet, 0, b.N)
				var before, after goruntime.MemStats
				goruntime.GC()
				goruntime.ReadMemStats(&before)
				for range b.N {
					if !hold {
						if _, err := h.Module.Reconcile(b.Context(), reconcileRequest("ns", name)); err != nil {
							b.Fatal(err)
						}
						continue
					}
					_, rs, err := h.Module.ReconcileReads(b.Context(), reconcileRequest("ns", name))
					if err != nil || !rs.Reusable() {
						b.Fatal(err, rs.Effect())
					}
					held = append(held, rs)
				}
				goruntime.GC()
				goruntime.ReadMemStats(&after)
				goruntime.KeepAlive(held)
				return float64(after.HeapAlloc-before.HeapAlloc) / float64(b.N)
			}
			retained(false) // warm: the instance and the caches
			base := retained(false)
			b.ReportMetric(retained(true)-base, "retained-B/readset")
			_, rs, _ := h.Module.ReconcileReads(b.Context(), reconcileRequest("ns", name))
			b.ReportMetric(float64(rs.Objects()), "objects/readset")
		})
	}
}
