package wasmtest_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/internal/guestscript"
	"github.com/wre-dev/wre/host/wasmtest"
)

var (
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gizmos     = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gizmos"}
)

func config(t *testing.T, steps ...guestscript.Step) []byte {
	b, err := json.Marshal(guestscript.Script{Steps: steps})
	require.NoError(t, err)
	return b
}

func TestHarnessRunsAModuleAgainstFixtures(t *testing.T) {
	wasm := wasmtest.Build(t, "../testdata/guests/script")
	assert.Equal(t, wasm, wasmtest.Build(t, "../testdata/guests/script"), "built once per run")

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", Labels: map[string]string{"app": "a"}}, Data: map[string]string{"k": "v"}}
	gizmo := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Gizmo",
		"metadata": map[string]any{"namespace": "ns", "name": "g"}}}
	getCM := &abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "$ns", Name: "$name"}
	listCM := &abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "ns", LabelSelector: "app=a"}
	listGizmos := &abi.Request{Group: "example.com", Version: "v1", Resource: "gizmos", Kind: "Gizmo", Namespace: "ns"}
	widgets := &abi.Request{Group: "example.com", Version: "v1", Resource: "widgets", Kind: "Widget", Namespace: "ns"}
	one, none := 1, 0
	h := wasmtest.New(t, wasm, wasmtest.Options{
		Objects:   []runtime.Object{cm, gizmo},
		ListKinds: map[schema.GroupVersionResource]string{{Group: "example.com", Version: "v1", Resource: "widgets"}: "WidgetList"},
		Cached:    []schema.GroupVersionResource{configMaps, gizmos},
		Module: host.ModuleOptions{Config: config(t,
			guestscript.Step{Op: abi.OpGet, Req: getCM, BodyContains: "v"},
			guestscript.Step{Op: abi.OpList, Req: listCM, WantItems: &one},
			guestscript.Step{Op: abi.OpList, Req: listGizmos, WantItems: &one},
			guestscript.Step{Op: abi.OpList, Req: widgets, WantItems: &none},
			guestscript.Step{Op: abi.OpEvent, Req: &abi.Request{EventType: "Normal", EventReason: "Seen", EventMessage: "hi"}},
			guestscript.Step{Op: abi.OpPatch, Req: &abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "ns", Name: "a",
				PatchType: abi.PatchMerge, Body: []byte(`{"data":{"k":"patched"}}`)}},
		)},
	})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
	assert.Equal(t, []string{"Normal Seen hi"}, h.Events())
	assert.Empty(t, h.Events(), "Events drains")
	got, err := h.Get(t.Context(), configMaps, "ns", "a")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"k": "patched"}, got.Object["data"])
	_, err = h.Get(t.Context(), configMaps, "ns", "missing")
	assert.Error(t, err)
}

func TestCacheServesBuiltinsTyped(t *testing.T) {
	wasm := wasmtest.Build(t, "../testdata/guests/script")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}
	h := wasmtest.New(t, wasm, wasmtest.Options{Objects: []runtime.Object{cm}})
	c := &wasmtest.Cache{Client: h.Client, Resources: []schema.GroupVersionResource{configMaps, gizmos}}
	r, ok := c.Reader(configMaps)
	require.True(t, ok)
	obj, err := r.Get("ns", "a")
	require.NoError(t, err)
	assert.IsType(t, &corev1.ConfigMap{}, obj)
	objs, cont, err := r.List("", metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, cont)
	require.Len(t, objs, 1)
	assert.IsType(t, &corev1.ConfigMap{}, objs[0])
	_, err = r.Get("ns", "missing")
	assert.Error(t, err)
	_, ok = c.Reader(schema.GroupVersionResource{Version: "v1", Resource: "secrets"})
	assert.False(t, ok)
}

func TestBuildFailureNamesTheError(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		wasmtest.Build(ft, "testdata/does-not-exist")
	}()
	assert.Contains(t, ft.msg, "does-not-exist")
}

// fakeT records Fatal instead of stopping the test.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatal(args ...any) {
	f.msg = ""
	for _, a := range args {
		if e, ok := a.(error); ok {
			f.msg += e.Error()
		}
	}
	panic("fatal")
}
