package host_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

// TestGoodModuleReconcilesWhileOthersSpinAndHog runs, in one runtime, a
// module spinning in an endless loop until its reconcile timeout, a module
// growing its memory past the cap over and over, and a well-behaved module.
// The good module must complete many reconciles while both hostile ones are
// mid-failure, not just afterwards; when all are closed, no instance, guest
// memory or goroutine is left.
func TestGoodModuleReconcilesWhileOthersSpinAndHog(t *testing.T) {
	leftovers := goleak.IgnoreCurrent() // goroutines of earlier tests
	ctx := context.WithoutCancel(t.Context())
	obj := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	h := run(t, script{Steps: []step{{Op: abi.OpGet, Req: cmReq("$ns", "$name")}}}, wasmtest.Options{
		Objects: []runtime.Object{configMap("ns", "a", nil)},
		Module:  host.ModuleOptions{Name: "good"},
	})
	hostile := func(name string, s script, mo host.ModuleOptions) *host.Module {
		mo.Name, mo.Config, mo.Primary, mo.PrimaryKind = name, mustJSON(t, s), configMaps, "ConfigMap"
		m, err := h.Runtime.NewModule(ctx, h.Compiled, h.Connect(mo))
		require.NoError(t, err)
		return m
	}
	const spinTimeout = 3 * time.Second
	spin := hostile("spin", script{Steps: []step{{Loop: true}}}, host.ModuleOptions{ReconcileTimeout: spinTimeout})
	hog := hostile("hog", script{Steps: []step{{Grow: true}}}, host.ModuleOptions{MemoryLimitBytes: 64 << 20})
	// Instances exist before the clock starts, so that initialization does
	// not eat into the overlap.
	for _, m := range []*host.Module{spin, hog, h.Module} {
		require.NoError(t, m.Warm(ctx))
	}

	var spinning atomic.Bool
	spinning.Store(true)
	spinErr := make(chan error, 1)
	go func() {
		_, err := spin.Reconcile(ctx, obj)
		spinning.Store(false)
		spinErr <- err
	}()

	var (
		hogInFlight atomic.Int32
		hogErrs     []error
		stopHog     = make(chan struct{})
		wg          sync.WaitGroup
	)
	wg.Go(func() {
		for {
			select {
			case <-stopHog:
				return
			default:
			}
			hogInFlight.Add(1)
			_, err := hog.Reconcile(ctx, obj)
			hogInFlight.Add(-1)
			hogErrs = append(hogErrs, err)
		}
	})

	start := time.Now()
	var good, goodDuringBoth int
	for spinning.Load() {
		_, err := h.Reconcile(ctx, "ns", "a")
		require.NoError(t, err, "the good module fails while the others misbehave")
		good++
		if spinning.Load() && hogInFlight.Load() > 0 {
			goodDuringBoth++
		}
	}
	elapsed := time.Since(start)
	close(stopHog)
	wg.Wait()
	err := <-spinErr
	// The spinner returns at its timeout; with -race, up to a few times later
	// while the hog grows (copying its memory is slow under the detector).
	t.Logf("good module: %d reconciles in %s (spinner timeout %s), %d while the spinner spun and the hog grew; hog: %d failed reconciles",
		good, elapsed.Round(time.Millisecond), spinTimeout, goodDuringBoth, len(hogErrs))

	require.Error(t, err)
	assert.Contains(t, err.Error(), host.TrapTimeout, "the spinner is stopped by its timeout")
	assert.GreaterOrEqual(t, elapsed, spinTimeout/2, "the spinner ran for about its timeout")
	require.NotEmpty(t, hogErrs)
	for _, err := range hogErrs {
		if assert.Error(t, err) {
			assert.Contains(t, err.Error(), host.TrapOOM)
		}
	}
	assert.GreaterOrEqual(t, goodDuringBoth, 20, "the good module must keep reconciling while the others fail")

	for _, m := range []*host.Module{spin, hog} {
		require.NoError(t, m.Close(ctx))
	}
	require.NoError(t, h.Close(ctx))
	for _, name := range []string{"good", "spin", "hog"} {
		assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.Instances.WithLabelValues(name)), "%s instances after close", name)
		assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues(name)), "%s guest memory after close", name)
	}
	goleak.VerifyNone(t, goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"), leftovers)
}
