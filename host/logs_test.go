package host_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
)

// TestLogStormIsBoundedPerReconcile: a guest that logs and prints far more
// than its limit per reconcile gets its lines up to the limit, then one
// marker line with the count of the dropped ones, counted in the metrics;
// the next reconcile has a budget of its own.
func TestLogStormIsBoundedPerReconcile(t *testing.T) {
	const storm = 20000
	var logs logSink
	h := run(t, script{Steps: []step{
		{Log: "logged line", Repeat: storm},
		{Print: "printed line", Repeat: storm}, // to stdout and stderr
	}}, wasmtest.Options{
		Runtime: host.RuntimeOptions{Logger: logs.logger()},
		Module:  host.ModuleOptions{MaxLogLines: 100},
	})
	for i := range 2 {
		_, err := h.Reconcile(t.Context(), "ns", "a")
		require.NoError(t, err)
		logged, printed, markers := logs.count("logged line"), logs.count("printed line"), logs.count(host.LogDroppedMarker)
		assert.Equal(t, 100*(i+1), logged+printed, "reconcile %d: the limit of lines per reconcile", i)
		assert.Equal(t, i+1, markers, "one marker per reconcile")
		dropped := float64((i + 1) * (3*storm - 100))
		assert.Equal(t, dropped, testutil.ToFloat64(h.Metrics.LogDroppedLines.WithLabelValues("test")))
		assert.Greater(t, testutil.ToFloat64(h.Metrics.LogDroppedBytes.WithLabelValues("test")), 11*dropped)
	}
	assert.NotEmpty(t, logs.find(host.LogDroppedMarker+" 59900 lines (", "over the limit of 100 lines or 1048576 bytes per reconcile", `"reconcileID"`, `"object"="ns/a"`))
}

// TestLogBytesAreBounded: the byte limit holds however few lines there are.
func TestLogBytesAreBounded(t *testing.T) {
	var logs logSink
	line := strings.Repeat("x", 1000)
	h := run(t, script{Steps: []step{{Log: line, Repeat: 50}}}, wasmtest.Options{
		Runtime: host.RuntimeOptions{Logger: logs.logger()},
		Module:  host.ModuleOptions{MaxLogBytes: 10000},
	})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
	assert.Equal(t, 10, logs.count(line))
	assert.Equal(t, 40.0, testutil.ToFloat64(h.Metrics.LogDroppedLines.WithLabelValues("test")))
	assert.Equal(t, 40000.0, testutil.ToFloat64(h.Metrics.LogDroppedBytes.WithLabelValues("test")))
	assert.NotEmpty(t, logs.find(host.LogDroppedMarker+" 40 lines (40000 bytes)"))
}
