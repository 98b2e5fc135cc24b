// Package modules_test runs each example module, built to wasm, through the
// real wre host (host/wasmtest) with the permissions of its module.yaml, so a
// module that needs a permission its manifest lacks fails here.
package modules_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
)

// manifest is the part of a module.yaml these tests use.
type manifest struct {
	Name string `json:"name"`
	For  struct {
		Group    string `json:"group"`
		Version  string `json:"version"`
		Resource string `json:"resource"`
		Kind     string `json:"kind"`
	} `json:"for"`
	Permissions host.Permissions `json:"permissions"`
}

// run builds the module in dir and starts it in the real host over objs.
func run(t *testing.T, dir string, listKinds map[schema.GroupVersionResource]string, objs ...runtime.Object) *wasmtest.Harness {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "module.yaml"))
	require.NoError(t, err)
	var m manifest
	require.NoError(t, yaml.Unmarshal(raw, &m), "module.yaml")
	if m.Name != filepath.Base(dir) {
		t.Fatalf("module.yaml names %q, directory is %q", m.Name, dir)
	}
	return wasmtest.New(t, wasmtest.Build(t, dir), wasmtest.Options{
		Module: host.ModuleOptions{
			Name:        m.Name,
			Permissions: m.Permissions,
			Primary:     schema.GroupVersionResource{Group: m.For.Group, Version: m.For.Version, Resource: m.For.Resource},
			PrimaryKind: m.For.Kind,
		},
		Objects:   objs,
		ListKinds: listKinds,
	})
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
	h := run(t, "status-sync", map[schema.GroupVersionResource]string{widgets: "WidgetList"},
		object("demo.wre.dev/v1", "Widget", "demo", "w", map[string]any{"spec": map[string]any{"desired": "blue"}}))

	_, err := h.Reconcile(t.Context(), "demo", "w")
	require.NoError(t, err)
	got, err := h.Get(t.Context(), widgets, "demo", "w")
	require.NoError(t, err)
	current, _, _ := unstructured.NestedString(got.Object, "status", "current")
	require.Equal(t, "blue", current)
	require.Len(t, h.Events(), 1)
}
