package host_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host/wasmtest"
)

// TestMetricNamesExist proves the names dashboards and alerts query, with their
// series created up front for a module that has not done anything yet.
func TestMetricNamesExist(t *testing.T) {
	h := run(t, script{Steps: []step{{Op: abi.OpConfig, Req: &abi.Request{}}}}, wasmtest.Options{})
	families, err := h.Registry.Gather()
	require.NoError(t, err)
	names := map[string]int{}
	for _, f := range families {
		names[f.GetName()] = len(f.GetMetric())
	}
	assert.Equal(t, 2*len(abi.Ops()), names["wre_host_calls_total"], "codes 200 and 403 of every op")
	assert.Equal(t, len(abi.Ops()), names["wre_host_call_duration_seconds"])
	assert.Len(t, abi.Ops(), 13, "v1's ten ops and v2's declare, apply, status_apply")
	assert.Equal(t, 8, names["wre_guest_traps_total"], "every reason")
	assert.Equal(t, 1, names["wre_module_instances"])
	assert.Equal(t, 1, names["wre_module_instances_idle_closed_total"])
	assert.Equal(t, 1, names["wre_guest_memory_bytes"])
	assert.Equal(t, 1, names["wre_guest_runaway_instances"])
	assert.Equal(t, 1, names["wre_module_compile_seconds"])
	assert.Equal(t, 1, names["wre_module_log_dropped_lines_total"])
	assert.Equal(t, 1, names["wre_module_log_dropped_bytes_total"])

	_, err = h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.Instances.WithLabelValues("test")))
	assert.Greater(t, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("test")), float64(1<<20))
	// One config call during _initialize, one in the reconcile.
	assert.Equal(t, 2.0, testutil.ToFloat64(h.Metrics.HostCalls.WithLabelValues("test", "config", "200")))
}
