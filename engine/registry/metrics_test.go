package registry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const loadsHeader = `# HELP wre_module_loads_total Attempts to load a module version, by result (success, error).
# TYPE wre_module_loads_total counter
`

const infoHeader = `# HELP wre_module_info 1 for the version (digest of the wasm, ABI) each loaded module runs.
# TYPE wre_module_info gauge
`

func TestNewMetricsRegistersEveryCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	m.initModule("a")
	m.running("a", "sha256:1", "v1")
	m.LoadSeconds.Observe(0.5)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	assert.Equal(t, []string{"wre_module_info", "wre_module_load_seconds", "wre_module_loads_total"}, names)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)

	_, err = NewMetrics(reg)
	assert.Error(t, err, "a second set on the same registry collides")
	_, err = NewMetrics(nil)
	assert.NoError(t, err, "a nil registerer registers nowhere")
}

// The error series of a known module exists at 0 before its first failure,
// so that increase() and rate() see the failure as a step from 0.
func TestLoadSeriesCreatedUpFront(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(m *Metrics)
		want string
	}{
		{"known module", func(m *Metrics) { m.initModule("a") }, `
wre_module_loads_total{module="a",result="error"} 0
wre_module_loads_total{module="a",result="success"} 0
`},
		{"loaded once", func(m *Metrics) {
			m.initModule("a")
			m.Loads.WithLabelValues("a", ResultSuccess).Inc()
		}, `
wre_module_loads_total{module="a",result="error"} 0
wre_module_loads_total{module="a",result="success"} 1
`},
		{"first failure", func(m *Metrics) {
			m.initModule("a")
			m.Loads.WithLabelValues("a", ResultSuccess).Inc()
			m.Loads.WithLabelValues("a", ResultError).Inc()
		}, `
wre_module_loads_total{module="a",result="error"} 1
wre_module_loads_total{module="a",result="success"} 1
`},
		{"initModule again keeps the counts", func(m *Metrics) {
			m.initModule("a")
			m.Loads.WithLabelValues("a", ResultError).Inc()
			m.initModule("a")
		}, `
wre_module_loads_total{module="a",result="error"} 1
wre_module_loads_total{module="a",result="success"} 0
`},
		{"removed module", func(m *Metrics) {
			m.initModule("a")
			m.initModule("b")
			m.removeModule("a")
		}, `
wre_module_loads_total{module="b",result="error"} 0
wre_module_loads_total{module="b",result="success"} 0
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMetrics(nil)
			require.NoError(t, err)
			tc.do(m)
			assert.NoError(t, testutil.CollectAndCompare(m.Loads, strings.NewReader(loadsHeader+tc.want)))
		})
	}
}

func TestInfoIsTheRunningVersion(t *testing.T) {
	m, err := NewMetrics(nil)
	require.NoError(t, err)
	m.running("a", "sha256:1", "v1")
	m.running("b", "sha256:9", "v1")
	m.running("a", "sha256:2", "v1")
	assert.NoError(t, testutil.CollectAndCompare(m.Info, strings.NewReader(infoHeader+`
wre_module_info{abi="v1",digest="sha256:2",module="a"} 1
wre_module_info{abi="v1",digest="sha256:9",module="b"} 1
`)), "a swap replaces the old version's series")
	m.removeModule("a")
	assert.NoError(t, testutil.CollectAndCompare(m.Info, strings.NewReader(infoHeader+`
wre_module_info{abi="v1",digest="sha256:9",module="b"} 1
`)))
}
