package modules_test

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host"
)

func TestPolicyCheck(t *testing.T) {
	policy := &modules.Policy{Permissions: host.Permissions{
		{APIGroups: []string{"demo.wre.dev"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch", "update"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}, Namespaces: []string{"a", "b"}},
	}}
	grant := func(p ...host.Permission) *modules.Manifest { return &modules.Manifest{Name: "m", Permissions: p} }
	cases := []struct {
		name string
		m    *modules.Manifest
		want []string // empty: allowed
	}{
		{"covered", grant(host.Permission{APIGroups: []string{"demo.wre.dev"}, Resources: []string{"widgets", "widgets/status"}, Verbs: []string{"get", "update"}}), nil},
		{"namespaced covered", grant(host.Permission{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"delete"}, Namespaces: []string{"b"}}), nil},
		{"verb beyond", grant(host.Permission{APIGroups: []string{"demo.wre.dev"}, Resources: []string{"widgets"}, Verbs: []string{"delete"}}),
			[]string{"permissions[0]: delete widgets (group demo.wre.dev) in every namespace is not allowed"}},
		{"namespace beyond", grant(host.Permission{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}, Namespaces: []string{"a", "c"}}),
			[]string{"get configmaps (group core) in namespace c is not allowed"}},
		{"cluster-wide beyond", grant(host.Permission{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}),
			[]string{"get configmaps (group core) in every namespace"}},
		{"wildcard group", grant(host.Permission{APIGroups: []string{"*"}, Resources: []string{"widgets"}, Verbs: []string{"get"}}),
			[]string{"get widgets (group *)"}},
		{"service account", &modules.Manifest{Name: "m", ServiceAccountName: "sa"}, []string{"serviceAccountName: the policy does not let"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := policy.Check(c.m)
			if len(c.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), `module "m" exceeds the engine policy`)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestAllowAllCoversEverything(t *testing.T) {
	m := &modules.Manifest{Name: "m", ServiceAccountName: "sa", Permissions: host.Permissions{
		{APIGroups: []string{"*", ""}, Resources: []string{"*", "secrets", "*/status"}, Verbs: []string{"*", "get"}, Namespaces: []string{"x"}},
	}}
	assert.NoError(t, modules.AllowAll.Check(m))
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	p, err := modules.LoadPolicy(write("ok.yaml", `apiVersion: wre.dev/v1alpha1
kind: Policy
permissions:
  - {apiGroups: [""], resources: [configmaps], verbs: [get]}
`))
	require.NoError(t, err)
	assert.True(t, p.Permissions.Allows("get", "", "configmaps", "x"))
	assert.False(t, p.AllowServiceAccounts)

	_, err = modules.LoadPolicy(write("kind.yaml", "apiVersion: wre.dev/v1alpha1\nkind: Module\n"))
	assert.ErrorContains(t, err, "want wre.dev/v1alpha1/Policy")
	_, err = modules.LoadPolicy(write("unknown.yaml", "apiVersion: wre.dev/v1alpha1\nkind: Policy\nallow: all\n"))
	assert.ErrorContains(t, err, `unknown field "allow"`)
	_, err = modules.LoadPolicy(filepath.Join(dir, "missing.yaml"))
	assert.ErrorContains(t, err, "load policy")
}

func TestLoadPolicyLimits(t *testing.T) {
	dir := t.TempDir()
	load := func(t *testing.T, limits string) (*modules.Policy, error) {
		p := filepath.Join(dir, t.Name()[len("TestLoadPolicyLimits/"):]+".yaml")
		require.NoError(t, os.WriteFile(p, []byte("apiVersion: wre.dev/v1alpha1\nkind: Policy\npermissions: []\nlimits:\n"+limits), 0o600))
		return modules.LoadPolicy(p)
	}
	t.Run("every ceiling", func(t *testing.T) {
		p, err := load(t, "  memory: 256Mi\n  concurrency: 8\n  reconcileTimeout: 1m\n  initTimeout: 5s\n  logLines: 100\n  logBytes: 65536\n")
		require.NoError(t, err)
		assert.Equal(t, modules.Limits{MemoryBytes: 256 << 20, Concurrency: 8, ReconcileTimeout: time.Minute, InitTimeout: 5 * time.Second, LogLines: 100, LogBytes: 64 << 10}, p.Limits)
		m := &modules.Manifest{Name: "m", MemoryLimit: quantity("512Mi")}
		assert.EqualError(t, p.Check(m), `module "m" exceeds the engine policy: memoryLimit 512Mi is above the engine's ceiling of 256Mi (wre run --max-module-memory or policy limits.memory)`)
	})
	t.Run("some ceilings", func(t *testing.T) {
		p, err := load(t, "  concurrency: 2\n  logBytes: null\n")
		require.NoError(t, err)
		assert.Equal(t, modules.Limits{Concurrency: 2}, p.Limits, "the others are the defaults")
		assert.ErrorContains(t, p.Check(&modules.Manifest{Name: "m", Concurrency: 3}), "concurrency 3 is above the engine's ceiling of 2")
		assert.ErrorContains(t, p.Check(&modules.Manifest{Name: "m", MemoryLimit: quantity("2Gi")}), "ceiling of 1Gi", "the default ceiling")
	})
	invalid := []struct{ name, limits, want string }{
		{"memory above the absolute bound", "  memory: 8Gi\n", "limits.memory 8Gi: must be positive and at most 4Gi"},
		{"negative concurrency", "  concurrency: -1\n", "limits.concurrency -1: must be positive and at most 256"},
		{"timeout above the absolute bound", "  reconcileTimeout: 1h\n", "limits.reconcileTimeout 1h0m0s: must be positive and at most 10m0s"},
		{"duration without unit", "  initTimeout: 30\n", `limits.initTimeout: "30" is not a valid initTimeout value`},
		{"bad quantity", "  logBytes: lots\n", `limits.logBytes: "lots" is not a valid maxLogBytes value`},
		{"fraction", "  logLines: 1.5\n", `limits.logLines: "1.5" is not a valid maxLogLines value`},
		{"not a scalar", "  memory: [1Gi]\n", "limits.memory: must be a string or a number"},
		{"unknown field", "  memoryLimit: 1Gi\n  cpu: 1\n", "limits.cpu: unknown field (known: memory, concurrency, reconcileTimeout, initTimeout, logLines, logBytes)\nlimits.memoryLimit: unknown field"},
		{"not a map", "  - memory\n", "limits: json: cannot unmarshal array"},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.limits)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "load policy ")
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestLimitsOverTakesTheNonzeroCeilings(t *testing.T) {
	file := modules.Limits{MemoryBytes: 256 << 20, Concurrency: 8, LogLines: 100}
	flags := modules.Limits{MemoryBytes: 512 << 20, InitTimeout: 5 * time.Second}
	assert.Equal(t, modules.Limits{MemoryBytes: 512 << 20, Concurrency: 8, InitTimeout: 5 * time.Second, LogLines: 100}, flags.Over(file),
		"a flag set explicitly overrides the file; the file fills the rest")
	assert.Equal(t, modules.DefaultLimits, modules.Limits{}.Over(modules.DefaultLimits))
	m := &modules.Manifest{Name: "m", MemoryLimit: quantity("384Mi"), Concurrency: 9, ReconcileTimeout: metav1.Duration{Duration: 10 * time.Minute}}
	assert.EqualError(t, flags.Over(file).Check(m), "concurrency 9 is above the engine's ceiling of 8 (wre run --max-module-concurrency or policy limits.concurrency)",
		"memory within the flag's ceiling, the reconcile timeout within the default's")
}

func TestLimitsFlags(t *testing.T) {
	var l modules.Limits
	l.MemoryBytes = 1 // zeroed by RegisterFlags
	fs := flag.NewFlagSet("wre run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--max-module-memory", "512Mi", "--max-init-timeout", "5s", "--max-log-lines", "7"}))
	assert.Equal(t, modules.Limits{MemoryBytes: 512 << 20, InitTimeout: 5 * time.Second, LogLines: 7}, l, "unset flags leave their ceilings zero")
	assert.Equal(t, "512Mi", fs.Lookup("max-module-memory").Value.String())
	assert.Empty(t, fs.Lookup("max-log-bytes").Value.String())
	assert.Contains(t, fs.Lookup("max-log-bytes").Usage, "at most 64Mi (default 10Mi; overrides the policy file's limits.logBytes)")
	assert.ErrorContains(t, fs.Parse([]string{"--max-module-concurrency", "many"}), `invalid value "many" for flag -max-module-concurrency`)
}

func TestLimitsJSONRoundTrip(t *testing.T) {
	l := modules.Limits{MemoryBytes: 256 << 20, Concurrency: 8, ReconcileTimeout: time.Minute, LogBytes: 1000}
	data, err := json.Marshal(l)
	require.NoError(t, err)
	assert.JSONEq(t, `{"memory":"256Mi","concurrency":8,"reconcileTimeout":"1m0s","logBytes":"1k"}`, string(data))
	var back modules.Limits
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, l, back)
}
