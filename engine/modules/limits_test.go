package modules_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host"
)

func TestLimitsRefuseAsksAboveTheCeilings(t *testing.T) {
	ceilings := modules.Limits{MemoryBytes: 256 << 20, Concurrency: 8, ReconcileTimeout: time.Minute, InitTimeout: 5 * time.Second, LogLines: 100, LogBytes: 64 << 10}
	cases := []struct {
		name string
		ask  func(*modules.Manifest)
		want string
	}{
		{"memory", func(m *modules.Manifest) { m.MemoryLimit = quantity("64Gi") }, "memoryLimit 64Gi is above the engine's ceiling of 256Mi (wre run --max-module-memory or policy limits.memory)"},
		{"concurrency", func(m *modules.Manifest) { m.Concurrency = 10000 }, "concurrency 10000 is above the engine's ceiling of 8 (wre run --max-module-concurrency or policy limits.concurrency)"},
		{"reconcile timeout", func(m *modules.Manifest) { m.ReconcileTimeout = metav1.Duration{Duration: time.Hour} }, "reconcileTimeout 1h0m0s is above the engine's ceiling of 1m0s (wre run --max-reconcile-timeout or policy limits.reconcileTimeout)"},
		{"init timeout", func(m *modules.Manifest) { m.InitTimeout = metav1.Duration{Duration: 6 * time.Second} }, "initTimeout 6s is above the engine's ceiling of 5s (wre run --max-init-timeout or policy limits.initTimeout)"},
		{"log lines", func(m *modules.Manifest) { m.MaxLogLines = 101 }, "maxLogLines 101 is above the engine's ceiling of 100 (wre run --max-log-lines or policy limits.logLines)"},
		{"log bytes", func(m *modules.Manifest) { m.MaxLogBytes = quantity("1Mi") }, "maxLogBytes 1Mi is above the engine's ceiling of 64Ki (wre run --max-log-bytes or policy limits.logBytes)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &modules.Manifest{Name: "m"}
			require.NoError(t, ceilings.Check(m), "asking for nothing is within any ceiling")
			c.ask(m)
			assert.EqualError(t, ceilings.Check(m), c.want)
			p := *modules.AllowAll
			p.Limits = ceilings
			assert.ErrorContains(t, p.Check(m), `module "m" exceeds the engine policy: `+c.want)
		})
	}
	m := &modules.Manifest{Name: "m", Concurrency: 8, MemoryLimit: quantity("256Mi"), MaxLogLines: 100}
	assert.NoError(t, ceilings.Check(m), "asking for exactly the ceiling is allowed")
}

func TestDefaultLimitsApplyToAnEmptyPolicy(t *testing.T) {
	m := &modules.Manifest{Name: "m", MemoryLimit: func() *resource.Quantity { q := resource.MustParse("2Gi"); return &q }(), Concurrency: 65}
	assert.EqualError(t, modules.Limits{}.Check(m), "memoryLimit 2Gi is above the engine's ceiling of 1Gi (wre run --max-module-memory or policy limits.memory)\n"+
		"concurrency 65 is above the engine's ceiling of 64 (wre run --max-module-concurrency or policy limits.concurrency)")
	assert.ErrorContains(t, modules.AllowAll.Check(m), "memoryLimit 2Gi is above the engine's ceiling of 1Gi")
}

func TestLimitsApplyCapsTheDefaults(t *testing.T) {
	asked := host.ModuleOptions{Concurrency: 3, MaxLogLines: 10}
	o := modules.Limits{MemoryBytes: 64 << 20, ReconcileTimeout: 5 * time.Second, Concurrency: 4}.Apply(asked)
	assert.Equal(t, 3, o.Concurrency, "what the manifest asked for")
	assert.Equal(t, 10, o.MaxLogLines)
	assert.Equal(t, uint64(64<<20), o.MemoryLimitBytes, "the ceiling, below the host default")
	assert.Equal(t, 5*time.Second, o.ReconcileTimeout)
	assert.Equal(t, host.DefaultInitTimeout, o.InitTimeout, "the host default, below the default ceiling")
	assert.Equal(t, host.DefaultMaxLogBytes, o.MaxLogBytes)
}

func TestLimitsValidate(t *testing.T) {
	require.NoError(t, modules.Limits{}.Validate())
	require.NoError(t, modules.DefaultLimits.Validate())
	err := modules.Limits{MemoryBytes: 8 << 30, Concurrency: -1}.Validate()
	assert.ErrorContains(t, err, "--max-module-memory 8Gi: must be positive and at most 4Gi")
	assert.ErrorContains(t, err, "--max-module-concurrency -1: must be positive and at most 256")
}

func quantity(s string) *resource.Quantity { q := resource.MustParse(s); return &q }
