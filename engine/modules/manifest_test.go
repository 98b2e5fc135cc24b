package modules_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/engine/modules"
)

// valid is a complete manifest that the cases below break one field at a time.
const valid = `apiVersion: wre.dev/v1alpha1
kind: Module
name: demo
abi: v1
for: {group: demo.wre.dev, version: v1, resource: widgets, kind: Widget}
owns: [{group: apps, version: v1, resource: deployments, kind: Deployment}]
watches: [{version: v1, resource: configmaps, kind: ConfigMap, mapTo: sameName}]
permissions:
  - apiGroups: [demo.wre.dev, apps, ""]
    resources: [widgets, deployments, configmaps]
    verbs: [get, list, watch]
concurrency: 3
reconcileTimeout: 7s
initTimeout: 3s
memoryLimit: 32Mi
config: {color: blue}
serviceAccountName: wre-module-demo
predicates: [GenerationChanged]
memoize: true
`

func TestParseManifestValid(t *testing.T) {
	m, err := modules.ParseManifest([]byte(valid))
	require.NoError(t, err)
	assert.Equal(t, "demo", m.Name)
	assert.Equal(t, "wre_abi_v1", m.ABIMarker())
	assert.Equal(t, "demo.wre.dev/v1, Resource=widgets", m.For.GVR().String())
	assert.Equal(t, "Widget", m.For.GVK().Kind)
	assert.True(t, m.Memoize)
	o := m.ModuleOptions()
	assert.Equal(t, 3, o.Concurrency)
	assert.Equal(t, 7*time.Second, o.ReconcileTimeout)
	assert.Equal(t, 3*time.Second, o.InitTimeout)
	assert.Equal(t, uint64(32<<20), o.MemoryLimitBytes)
	assert.JSONEq(t, `{"color":"blue"}`, string(o.Config))
	assert.Equal(t, "Widget", o.PrimaryKind)
	assert.Equal(t, m.Permissions, o.Permissions)
}

// TestExampleManifests proves the example modules' manifests are valid.
func TestExampleManifests(t *testing.T) {
	files, err := filepath.Glob("../../modules/*/module.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		m, err := modules.ParseManifest(data)
		require.NoError(t, err, f)
		assert.Equal(t, filepath.Base(filepath.Dir(f)), m.Name)
	}
}

func TestParseManifestInvalid(t *testing.T) {
	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"api version", "wre.dev/v1alpha1", "wre.dev/v2", []string{`apiVersion: Unsupported value: "wre.dev/v2"`}},
		{"kind", "kind: Module", "kind: Modul", []string{`kind: Unsupported value: "Modul"`}},
		{"name missing", "name: demo\n", "", []string{"name: Required value"}},
		{"name invalid", "name: demo", "name: Demo_1", []string{`name: Invalid value: "Demo_1"`}},
		{"abi", "abi: v1", "abi: 1", []string{`abi: Invalid value: "1"`}},
		{"for incomplete", "for: {group: demo.wre.dev, version: v1, resource: widgets, kind: Widget}", "for: {group: demo.wre.dev}",
			[]string{"for.kind: Required value", "for.resource: Required value", "for.version: Required value"}},
		{"owns kind", "kind: Deployment}", "kind: \"\"}", []string{"owns[0].kind: Required value"}},
		{"watch mapping", "mapTo: sameName", "mapTo: label", []string{`watches[0].mapTo: Unsupported value: "label"`}},
		{"not watchable", "verbs: [get, list, watch]", "verbs: [get, list]", []string{
			"for: Forbidden: the engine watches demo.wre.dev/v1, Resource=widgets for the module: permissions must grant watch",
			"owns[0]: Forbidden", "watches[0]: Forbidden"}},
		{"verb", "verbs: [get, list, watch]", "verbs: [get, list, watch, steal]", []string{`permissions[0].verbs[3]: Unsupported value: "steal"`}},
		{"empty grant", "resources: [widgets, deployments, configmaps]", "resources: []", []string{"permissions[0].resources: Required value"}},
		{"concurrency", "concurrency: 3", "concurrency: -1", []string{"concurrency: Invalid value: -1: must be positive (0 means 1)"}},
		{"timeout", "reconcileTimeout: 7s", "reconcileTimeout: -1h", []string{`reconcileTimeout: Invalid value: "-1h0m0s"`}},
		{"log lines", "concurrency: 3", "concurrency: 3\nmaxLogLines: -1", []string{`maxLogLines: Invalid value: -1`}},
		{"log bytes", "concurrency: 3", "concurrency: 3\nmaxLogBytes: 0", []string{`maxLogBytes: Invalid value: "0"`}},
		{"init timeout", "initTimeout: 3s", "initTimeout: -1s", []string{`initTimeout: Invalid value: "-1s"`}},
		{"memory", "memoryLimit: 32Mi", "memoryLimit: -8Gi", []string{`memoryLimit: Invalid value: "-8Gi"`}},
		{"service account", "serviceAccountName: wre-module-demo", "serviceAccountName: Bad_SA", []string{"serviceAccountName: Invalid value"}},
		{"predicate", "predicates: [GenerationChanged]", "predicates: [Always]", []string{`predicates[0]: Unsupported value: "Always"`}},
		{"digest", "predicates:", "digest: md5:abc\npredicates:", []string{`digest: Invalid value: "md5:abc"`}},
		{"memoize", "memoize: true", "memoize: sometimes", []string{"decode manifest", "memoize"}},
		{"unknown field", "concurrency: 3", "concurrency: 3\nreplicas: 2", []string{`unknown field "replicas"`}},
		{"not yaml", valid, "{", []string{"decode manifest"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Contains(t, valid, c.old)
			_, err := modules.ParseManifest([]byte(strings.Replace(valid, c.old, c.new, 1)))
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestValidateConfig(t *testing.T) {
	m, err := modules.ParseManifest([]byte(valid))
	require.NoError(t, err)
	m.Config = []byte("{not json")
	assert.ErrorContains(t, m.Validate(), "config: Invalid value")
	m.Config = make([]byte, modules.MaxConfigBytes+1)
	assert.ErrorContains(t, m.Validate(), "config: Too long")
}
