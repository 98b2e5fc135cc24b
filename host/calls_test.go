package host_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
)

var (
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	secrets    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

func cmReq(ns, name string) *abi.Request {
	return &abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: ns, Name: name}
}

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}}, Data: data}
}

func TestReconcileSucceedsWithGet(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(map[bool]string{false: "live", true: "cached"}[cached], func(t *testing.T) {
			opts := wasmtest.Options{Objects: []runtime.Object{configMap("ns", "a", map[string]string{"k": "value-a"})}}
			if cached {
				opts.Cached = []schema.GroupVersionResource{configMaps}
			}
			h := run(t, script{Steps: []step{
				{Op: abi.OpGet, Req: cmReq("$ns", "$name"), BodyContains: "value-a"},
				{Op: abi.OpGet, Req: cmReq("$ns", "missing"), Want: 404, WantReason: "NotFound"},
			}}, opts)
			res, err := h.Reconcile(t.Context(), "ns", "a")
			require.NoError(t, err)
			assert.True(t, res.IsZero())
		})
	}
}

func fakeClient() *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
}

var widgets = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

func widget(ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     map[string]any{"desired": "blue"},
	}}
	return u
}

func widgetReq(ns, name string) *abi.Request {
	return &abi.Request{Group: "example.com", Version: "v1", Resource: "widgets", Kind: "Widget", Namespace: ns, Name: name}
}

func with(r *abi.Request, f func(r *abi.Request)) *abi.Request { f(r); return r }

func TestHostCallsWriteThroughTheClient(t *testing.T) {
	objs := []runtime.Object{configMap("ns", "a", map[string]string{"k": "v"}), configMap("ns", "b", nil), configMap("other", "c", nil), widget("ns", "w")}
	h := run(t, script{Steps: []step{
		// 0: create from JSON, answered as protobuf (a built-in type).
		{Op: abi.OpCreate, Req: with(cmReq("ns", ""), func(r *abi.Request) {
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"metadata":{"name":"new"},"data":{"x":"created"}}`)
		}), Want: 201, BodyContains: "created"},
		// 1: get as protobuf, 2: update with the same protobuf bytes.
		{Op: abi.OpGet, Req: cmReq("ns", "a"), BodyContains: "v"},
		{Op: abi.OpUpdate, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.ContentType = abi.ContentTypeProtobuf }), UseBodyOf: ptr(1)},
		// 3: merge patch, 4: JSON patch, 5: merge patch answered as JSON.
		{Op: abi.OpPatch, Req: with(cmReq("ns", "a"), func(r *abi.Request) {
			r.PatchType, r.Body = abi.PatchMerge, []byte(`{"data":{"merged":"yes"}}`)
		}), BodyContains: "merged"},
		{Op: abi.OpPatch, Req: with(cmReq("ns", "a"), func(r *abi.Request) {
			r.PatchType, r.Body = abi.PatchJSON, []byte(`[{"op":"add","path":"/data/jsonpatched","value":"1"}]`)
		}), BodyContains: "jsonpatched"},
		// (The fake client cannot apply strategic merge patches to unstructured
		// objects; the control-plane test covers them.)
		{Op: abi.OpPatch, Req: with(cmReq("ns", "a"), func(r *abi.Request) {
			r.PatchType, r.Body, r.Accept = abi.PatchMerge, []byte(`{"data":{"smp":"1"}}`), abi.ContentTypeJSON
		}), BodyContains: `"smp":"1"`},
		// 6: list with a label selector, 7: list across namespaces.
		{Op: abi.OpList, Req: with(cmReq("ns", ""), func(r *abi.Request) { r.LabelSelector = "app=b" }), WantItems: ptr(1)},
		{Op: abi.OpList, Req: cmReq("", ""), WantItems: ptr(4)},
		// 8: delete with a propagation policy, 9: it is gone.
		{Op: abi.OpDelete, Req: with(cmReq("ns", "b"), func(r *abi.Request) { r.PropagationPolicy = "Foreground" })},
		{Op: abi.OpGet, Req: cmReq("ns", "b"), Want: 404},
		// 10: custom resources travel as JSON; status update and patch.
		{Op: abi.OpGet, Req: widgetReq("ns", "w"), BodyContains: `"desired":"blue"`},
		{Op: abi.OpStatusUpdate, Req: with(widgetReq("ns", "w"), func(r *abi.Request) {
			r.ContentType = abi.ContentTypeJSON
			r.Body = []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"status":{"current":"red"}}`)
		}), BodyContains: "red"},
		{Op: abi.OpStatusPatch, Req: with(widgetReq("ns", "w"), func(r *abi.Request) {
			r.PatchType, r.Body = abi.PatchMerge, []byte(`{"status":{"current":"blue"}}`)
		}), BodyContains: `"current":"blue"`},
		// 13: an event about the reconciled object, 14: about another one.
		{Op: abi.OpEvent, Req: &abi.Request{EventType: "Normal", EventReason: "Synced", EventMessage: "all good"}},
		{Op: abi.OpEvent, Req: with(widgetReq("ns", "w"), func(r *abi.Request) { r.EventType, r.EventReason = "Warning", "Odd" })},
		{Log: "hello from the guest"},
	}}, wasmtest.Options{Objects: objs})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)

	created, err := h.Get(t.Context(), configMaps, "ns", "new")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"x": "created"}, created.Object["data"])
	a, err := h.Get(t.Context(), configMaps, "ns", "a")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"k": "v", "merged": "yes", "jsonpatched": "1", "smp": "1"}, a.Object["data"])
	w, err := h.Get(t.Context(), widgets, "ns", "w")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"current": "blue"}, w.Object["status"])
	assert.Equal(t, []string{"Normal Synced all good", "Warning Odd "}, h.Events())
}

func TestHostCallsRejectBadRequests(t *testing.T) {
	h := run(t, script{Steps: []step{
		{Op: abi.OpGet, Req: &abi.Request{Resource: "configmaps", Name: "a"}, Want: 400},
		{Op: abi.OpGet, Req: cmReq("ns", ""), Want: 400},
		{Op: abi.OpPatch, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.PatchType = "text/plain" }), Want: 400},
		{Op: abi.OpPatch, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.PatchType, r.FieldManager = abi.PatchMerge, "someone-else" }), Want: 400},
		{Op: abi.OpDelete, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.PropagationPolicy = "Sometimes" }), Want: 400},
		{Op: abi.OpCreate, Req: with(cmReq("ns", ""), func(r *abi.Request) {
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}`)
		}), Want: 400},
		{Op: abi.OpCreate, Req: with(cmReq("ns", ""), func(r *abi.Request) {
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"metadata":{"name":"x","namespace":"elsewhere"}}`)
		}), Want: 400},
		{Op: abi.OpUpdate, Req: with(cmReq("ns", "a"), func(r *abi.Request) {
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"metadata":{"name":"b"}}`)
		}), Want: 400},
		{Op: abi.OpCreate, Req: with(cmReq("ns", ""), func(r *abi.Request) { r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`[1]`) }), Want: 400},
		{Op: abi.OpCreate, Req: with(cmReq("ns", ""), func(r *abi.Request) { r.ContentType, r.Body = "text/yaml", []byte(`a: b`) }), Want: 415},
		{Op: abi.OpCreate, Req: with(widgetReq("ns", ""), func(r *abi.Request) { r.ContentType, r.Body = abi.ContentTypeProtobuf, []byte{1} }), Want: 415},
		{Op: abi.OpGet, Req: with(widgetReq("ns", "w"), func(r *abi.Request) { r.Accept = abi.ContentTypeProtobuf }), Want: 415},
		{Op: abi.OpCreate, Req: with(cmReq("ns", ""), func(r *abi.Request) { r.ContentType, r.Body = abi.ContentTypeProtobuf, []byte{0xff, 0xff} }), Want: 400},
		{Op: abi.OpEvent, Req: &abi.Request{EventType: "Loud", EventReason: "X"}, Want: 400},
		{Op: abi.OpEvent, Req: &abi.Request{EventType: "Normal"}, Want: 400},
		{Op: abi.OpEvent, Req: with(cmReq("ns", "missing"), func(r *abi.Request) { r.EventType, r.EventReason = "Normal", "X" }), Want: 404},
		{Op: abi.OpGet, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.Accept = abi.ContentTypeJSON }), BodyContains: `"kind":"ConfigMap"`},
		{Op: abi.OpGet, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.Accept = "application/yaml" }), Want: 415},
	}}, wasmtest.Options{Objects: []runtime.Object{configMap("ns", "a", nil), widget("ns", "w")}})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
	assert.Empty(t, h.Events())
}

func TestCachedReadsAreTypedAndFiltered(t *testing.T) {
	objs := []runtime.Object{configMap("ns", "a", map[string]string{"k": "cached"}), configMap("ns", "b", nil)}
	h := run(t, script{Steps: []step{
		{Op: abi.OpList, Req: with(cmReq("ns", ""), func(r *abi.Request) { r.LabelSelector = "app=a" }), WantItems: ptr(1)},
		{Op: abi.OpList, Req: with(cmReq("ns", ""), func(r *abi.Request) { r.Accept = abi.ContentTypeJSON }), WantItems: ptr(2)},
		{Op: abi.OpGet, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.Live = true }), BodyContains: "cached"},
		{Op: abi.OpGet, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.Accept = abi.ContentTypeJSON }), BodyContains: `"apiVersion":"v1"`},
	}}, wasmtest.Options{Objects: objs, Cached: []schema.GroupVersionResource{configMaps}})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
}

func TestMessageSizeLimits(t *testing.T) {
	objs := []runtime.Object{}
	for i := range 20 {
		objs = append(objs, configMap("ns", fmt.Sprintf("cm-%02d", i), map[string]string{"pad": strings.Repeat("x", 200)}))
	}
	h := run(t, script{Steps: []step{
		{Op: abi.OpList, Req: cmReq("ns", ""), Want: 413, WantReason: "RequestEntityTooLarge"},
		{Op: abi.OpList, Req: with(cmReq("ns", ""), func(r *abi.Request) { r.Limit = 2 }), WantItems: ptr(2)},
		{Op: abi.OpCreate, Req: with(cmReq("ns", ""), func(r *abi.Request) {
			r.ContentType, r.Body = abi.ContentTypeJSON, []byte(`{"metadata":{"name":"big"},"data":{"x":"`+strings.Repeat("y", 5000)+`"}}`)
		}), Want: 413},
	}}, wasmtest.Options{Objects: objs, Runtime: host.RuntimeOptions{MaxMessageSize: 4096}})
	_, err := h.Reconcile(t.Context(), "ns", "cm-00")
	require.NoError(t, err)
}
