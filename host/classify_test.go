package host_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
)

// growOnceThenTrap is the body of a hand-written wre_reconcile that, on the
// first call of an instance, asks memory.grow for 2 GiB (refused under the
// cap: it returns -1, which the guest ignores) and succeeds, and on every
// later call traps with unreachable. Memory address 0 remembers the call.
var growOnceThenTrap = []byte{
	0x41, 0x00, 0x28, 0x02, 0x00, // i32.load (i32.const 0)
	0x04, 0x40, 0x00, 0x0b, // if: unreachable
	0x41, 0x00, 0x41, 0x01, 0x36, 0x02, 0x00, // i32.store (i32.const 0) (i32.const 1)
	0x41, 0xff, 0xff, 0x01, 0x40, 0x00, 0x1a, // drop (memory.grow (i32.const 32767))
	0x42, 0x00, // i64.const 0: success
}

// TestRefusedGrowDoesNotLabelALaterTrap: a refused memory.grow that the guest
// survived in one reconcile does not make the next reconcile's unrelated
// trap an oom: the reason comes from the failing reconcile only.
func TestRefusedGrowDoesNotLabelALaterTrap(t *testing.T) {
	h := wasmtest.New(t, wasmModule(true, nil, abiFuncs(abi.MarkerV1, growOnceThenTrap)),
		wasmtest.Options{Module: host.ModuleOptions{MemoryLimitBytes: 16 << 20}})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err, "the guest survives its refused grow")
	require.Equal(t, 1, h.Module.Instances())

	_, err = h.Reconcile(t.Context(), "ns", "a")
	require.ErrorContains(t, err, `module "test": reconcile ns/a: trap: `)
	assert.ErrorContains(t, err, "unreachable")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapWasm)))
	assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapOOM)))
}

// TestHugeAllocationIsOOM: a Go guest's single 4 GiB make, which wazero
// refuses before the memory cap is even asked (it is past the module's
// maximum), is an oom like any allocation past the cap, not a panic.
func TestHugeAllocationIsOOM(t *testing.T) {
	for _, size := range []int{4 << 30, 1 << 30} {
		h := run(t, script{Steps: []step{{Alloc: size}}}, wasmtest.Options{})
		_, err := h.Reconcile(t.Context(), "ns", "obj")
		require.ErrorContains(t, err, `module "test": reconcile ns/obj: oom (fatal error: out of memory): `, "make of %d bytes", size)
		assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapOOM)))
		assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapPanic)))
		assertHostStillWorks(t, h)
	}
}
