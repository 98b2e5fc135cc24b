// Package modules_test runs each example module, built to wasm, through the
// real wre host (host/wasmtest) with the permissions of its module.yaml, so a
// module that needs a permission its manifest lacks fails here.
package modules_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

// run builds the module in dir and starts it in the real host with the
// permissions, limits and config of its module.yaml; opts gives the fixtures.
func run(t testing.TB, dir string, opts wasmtest.Options) *wasmtest.Harness {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "module.yaml"))
	require.NoError(t, err)
	m, err := modules.ParseManifest(raw)
	require.NoError(t, err, "module.yaml")
	require.Equal(t, filepath.Base(dir), m.Name, "module.yaml names the module after its directory")
	opts.Module = m.ModuleOptions()
	return wasmtest.New(t, wasmtest.Build(t, dir), opts)
}

func object(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: fields}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func TestStatusSyncWasm(t *testing.T) {
	widgets := schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "widgets"}
	h := run(t, "status-sync", wasmtest.Options{
		ListKinds: map[schema.GroupVersionResource]string{widgets: "WidgetList"},
		Objects: []runtime.Object{
			object("demo.wre.dev/v1", "Widget", "demo", "w", map[string]any{"spec": map[string]any{"desired": "blue"}}),
		},
	})

	_, err := h.Reconcile(t.Context(), "demo", "w")
	require.NoError(t, err)
	got, err := h.Get(t.Context(), widgets, "demo", "w")
	require.NoError(t, err)
	current, _, _ := unstructured.NestedString(got.Object, "status", "current")
	require.Equal(t, "blue", current)
	require.Len(t, h.Events(), 1)
}

// TestStatusSyncMemoizes checks that status-sync keeps its memoize: true
// contract: the reconcile that syncs writes (never a basis for a skip), the
// next one of the in-sync Widget only reads it, and only a change to a field
// it reads would run it again.
func TestStatusSyncMemoizes(t *testing.T) {
	raw, err := os.ReadFile("status-sync/module.yaml")
	require.NoError(t, err)
	m, err := modules.ParseManifest(raw)
	require.NoError(t, err)
	require.True(t, m.Memoize)

	widgets := schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "widgets"}
	h := run(t, "status-sync", wasmtest.Options{
		ListKinds: map[schema.GroupVersionResource]string{widgets: "WidgetList"},
		Objects: []runtime.Object{
			object("demo.wre.dev/v1", "Widget", "demo", "w", map[string]any{"spec": map[string]any{"desired": "blue"}}),
		},
		Cached: []schema.GroupVersionResource{widgets},
	})
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "demo", Name: "w"}}
	_, rs, err := h.Module.ReconcileReads(t.Context(), req)
	require.NoError(t, err)
	assert.False(t, rs.Reusable(), "the syncing reconcile wrote")
	_, rs, err = h.Module.ReconcileReads(t.Context(), req)
	require.NoError(t, err)
	require.True(t, rs.Reusable(), rs.Effect())
	assert.Empty(t, h.Module.Changed(rs))

	change := func(f func(w *unstructured.Unstructured)) {
		w, err := h.Get(t.Context(), widgets, "demo", "w")
		require.NoError(t, err)
		f(w)
		_, err = h.Client.Resource(widgets).Namespace("demo").Update(t.Context(), w, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	change(func(w *unstructured.Unstructured) { w.SetLabels(map[string]string{"team": "a"}) })
	assert.Empty(t, h.Module.Changed(rs), "labels are not read")
	change(func(w *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(w.Object, "red", "spec", "desired")
	})
	assert.Equal(t, "get widgets.demo.wre.dev demo/w: changed", h.Module.Changed(rs))
}

func TestConfigMapReplicatorWasm(t *testing.T) {
	configmaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	h := run(t, "configmap-replicator", wasmtest.Options{
		Objects: []runtime.Object{object("v1", "ConfigMap", "src", "settings", map[string]any{
			"metadata": map[string]any{"annotations": map[string]any{"wre.dev/replicate-to": "a,b"}},
			"data":     map[string]any{"k": "v"},
		})},
		Cached: []schema.GroupVersionResource{configmaps},
	})

	res, err := h.Reconcile(t.Context(), "src", "settings")
	require.NoError(t, err)
	require.Positive(t, res.RequeueAfter)
	for _, ns := range []string{"a", "b"} {
		c, err := h.Get(t.Context(), configmaps, ns, "settings")
		require.NoError(t, err, "copy in %s", ns)
		v, _, _ := unstructured.NestedString(c.Object, "data", "k")
		require.Equal(t, "v", v)
		require.Equal(t, "src", c.GetLabels()["wre.dev/replica-of-namespace"])
	}
	src, err := h.Get(t.Context(), configmaps, "src", "settings")
	require.NoError(t, err)
	require.Equal(t, []string{"wre.dev/replicator"}, src.GetFinalizers())
}

func TestAppOperatorWasm(t *testing.T) {
	apps := schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "apps"}
	h := run(t, "app-operator", wasmtest.Options{
		ListKinds: map[schema.GroupVersionResource]string{apps: "AppList"},
		Objects: []runtime.Object{object("demo.wre.dev/v1", "App", "shop", "web", map[string]any{
			"metadata": map[string]any{"uid": "app-uid"},
			"spec":     map[string]any{"image": "nginx:1", "replicas": int64(2), "port": int64(8080)},
		})},
	})

	// The fake dynamic client of wasmtest does not implement server-side
	// apply, so the reconcile may fail after the apply call: what this test
	// checks is the apply configuration the wasm module sent through the host.
	_, _ = h.Reconcile(t.Context(), "shop", "web")
	var applied *unstructured.Unstructured
	for _, a := range h.Client.Actions() {
		p, ok := a.(k8stesting.PatchAction)
		if ok && a.GetResource().Resource == "deployments" && p.GetPatchType() == types.ApplyPatchType {
			applied = &unstructured.Unstructured{}
			require.NoError(t, applied.UnmarshalJSON(p.GetPatch()))
		}
	}
	require.NotNil(t, applied, "no apply of the Deployment in %v", h.Client.Actions())
	require.Equal(t, "Deployment", applied.GetKind())
	require.Equal(t, "web", applied.GetName())
	refs := applied.GetOwnerReferences()
	require.Len(t, refs, 1)
	require.Equal(t, types.UID("app-uid"), refs[0].UID)
	require.True(t, *refs[0].Controller)
	containers, _, _ := unstructured.NestedSlice(applied.Object, "spec", "template", "spec", "containers")
	require.Len(t, containers, 1)
	require.Equal(t, "nginx:1", containers[0].(map[string]any)["image"])
}
