package host_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

// TestLinearMemoryClosedWhileInUse closes a module, then the whole runtime,
// while workers reconcile (each reconcile logs and makes a host call, which
// read guest memory) and while another goroutine reads the memory metrics.
// The first module recycles its instances every two reconciles; the runtime
// is closed while the second one's guests run, so wazero frees their memory
// under them. Linear memory is mapped outside the Go heap, so a use after
// unmapping would crash the test binary; under -race it also checks that the
// memory bookkeeping is not racy. At the end every region is unmapped and the
// metrics are back to zero.
func TestLinearMemoryClosedWhileInUse(t *testing.T) {
	regions := host.LiveMemoryRegions()
	steps := script{Steps: []step{
		{Log: "reading guest memory"},
		{Op: abi.OpGet, Req: cmReq("ns", "missing"), Want: 404},
		{Spin: 100_000},
	}}
	opts := host.ModuleOptions{Concurrency: 3, MaxReconcilesPerInstance: 2}
	h := run(t, steps, wasmtest.Options{Module: opts})
	ctx := context.WithoutCancel(t.Context())
	opts.Name, opts.Client, opts.Primary, opts.PrimaryKind, opts.Config = "other", h.Client, configMaps, "ConfigMap", mustJSON(t, steps)
	opts.Permissions = host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}
	// Its instances are never recycled, so none runs _initialize (whose file
	// system calls race with wazero closing the runtime) when the runtime is
	// closed; it spins longer so that guests run at that moment.
	opts.MaxReconcilesPerInstance = 1 << 30
	steps.Steps[2].Spin = 2_000_000
	opts.Config = mustJSON(t, steps)
	other, err := h.Runtime.NewModule(ctx, h.Compiled, opts)
	require.NoError(t, err)

	// Each worker reconciles until its module is closed; an error before
	// that fails the test, one after it is expected.
	var wg sync.WaitGroup
	worker := func(m *host.Module, closed *atomic.Bool, reconciled *atomic.Int64) {
		defer wg.Done()
		for !closed.Load() {
			_, err := m.Reconcile(ctx, reconcile.Request{})
			if err != nil && !closed.Load() {
				t.Errorf("reconcile before close: %v", err)
				return
			}
			reconciled.Add(1)
		}
	}
	var testClosed, otherClosed atomic.Bool
	var testDone, otherDone atomic.Int64
	for range opts.Concurrency {
		wg.Add(2)
		go worker(h.Module, &testClosed, &testDone)
		go worker(other, &otherClosed, &otherDone)
	}
	stopReading := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stopReading:
				return
			default:
			}
			for _, name := range []string{"test", "other"} {
				assert.GreaterOrEqual(t, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues(name)), 0.0)
			}
			_ = h.Module.Instances() + other.Instances()
		}
	}()

	waitFor := func(n *atomic.Int64, want int64) {
		require.Eventually(t, func() bool { return n.Load() >= want }, time.Minute, time.Millisecond)
	}
	waitFor(&testDone, 10)
	testClosed.Store(true)
	require.NoError(t, h.Module.Close(ctx))
	require.Eventually(t, func() bool { return other.Instances() == opts.Concurrency }, time.Minute, time.Millisecond)
	waitFor(&otherDone, otherDone.Load()+int64(opts.Concurrency)) // other still reconciles
	otherClosed.Store(true)
	require.NoError(t, h.Runtime.Close(ctx))
	wg.Wait()
	close(stopReading)
	<-readerDone
	require.NoError(t, other.Close(ctx))

	assert.Equal(t, regions, host.LiveMemoryRegions(), "every instance's memory is unmapped")
	for _, name := range []string{"test", "other"} {
		assert.Zero(t, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues(name)), name)
	}
}

// TestLinearMemoryReservationFailure: when no address space can be reserved
// for an instance's memory, its reconcile fails with an init trap that says
// so, the process keeps running, and the module works again once memory is
// available.
func TestLinearMemoryReservationFailure(t *testing.T) {
	h := run(t, script{}, wasmtest.Options{})
	restore := host.FailMemoryReservations(syscall.ENOMEM)
	defer restore()
	_, err := h.Reconcile(t.Context(), "ns", "obj")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `module "test": reconcile ns/obj: init: reserve`)
	assert.Contains(t, err.Error(), "bytes of linear memory: cannot allocate memory")
	assert.True(t, errors.Is(err, syscall.ENOMEM))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapInit)))
	assert.Equal(t, 0, h.Module.Instances())
	assert.Zero(t, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("test")))

	restore()
	_, err = h.Reconcile(t.Context(), "ns", "obj")
	require.NoError(t, err, "the module works once memory can be reserved")
}
