package host_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

func requeues(t *testing.T, h *wasmtest.Harness, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	for range n {
		res, err := h.Reconcile(t.Context(), "ns", "a")
		require.NoError(t, err)
		out = append(out, res.RequeueAfter)
	}
	return out
}

func TestInstancesAreRecycledAfterMaxReconciles(t *testing.T) {
	h := run(t, script{RequeueCount: true}, wasmtest.Options{Module: host.ModuleOptions{MaxReconcilesPerInstance: 2}})
	// The guest counts reconciles per instance: a fresh instance starts at 1.
	assert.Equal(t, []time.Duration{1, 2, 1, 2, 1}, requeues(t, h, 5))
	assert.Equal(t, 1, h.Module.Instances())
}

func TestIdleInstancesAreDiscarded(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	h := run(t, script{RequeueCount: true}, wasmtest.Options{Module: host.ModuleOptions{IdleTimeout: time.Minute, Clock: clk}})
	assert.Equal(t, []time.Duration{1, 2}, requeues(t, h, 2))

	clk.Step(time.Minute + time.Second)
	assert.Equal(t, []time.Duration{1}, requeues(t, h, 1), "the idle instance was replaced on acquire")

	// The reaper evicts without a reconcile once its ticker fires.
	require.Eventually(t, clk.HasWaiters, time.Minute, time.Millisecond)
	clk.Step(2 * time.Minute)
	require.Eventually(t, func() bool { return h.Module.Instances() == 0 }, time.Minute, time.Millisecond)
	assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("test")))
	assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.Instances.WithLabelValues("test")))
	assert.Equal(t, int64(2), h.Module.IdleClosed())
	assert.Equal(t, 2.0, testutil.ToFloat64(h.Metrics.IdleClosed.WithLabelValues("test")))

	// The first reconcile after idling creates an instance again.
	assert.Equal(t, []time.Duration{1, 2}, requeues(t, h, 2))
	assert.Equal(t, 1, h.Module.Instances())
}

func TestIdleTimeoutDefaultsToTheRuntimes(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	h := run(t, script{}, wasmtest.Options{Module: host.ModuleOptions{Clock: clk}, Runtime: host.RuntimeOptions{IdleTimeout: time.Second}})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
	require.Eventually(t, clk.HasWaiters, time.Minute, time.Millisecond)
	clk.Step(3 * time.Second)
	require.Eventually(t, func() bool { return h.Module.Instances() == 0 }, time.Minute, time.Millisecond)
}

// TestIdleEvictionRacesAcquire closes idle instances while reconciles
// acquire and release them (run with -race): no reconcile ever gets a
// closed instance, and once the work stops the pool goes to zero.
func TestIdleEvictionRacesAcquire(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	const workers = 4
	h := run(t, script{}, wasmtest.Options{Module: host.ModuleOptions{IdleTimeout: time.Millisecond, Concurrency: workers, Clock: clk}})
	stop := make(chan struct{})
	var stepper sync.WaitGroup
	stepper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				clk.Step(time.Millisecond) // makes every idle instance stale and fires the reaper
				time.Sleep(100 * time.Microsecond)
			}
		}
	})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range 25 {
				_, err := h.Reconcile(t.Context(), "ns", "a")
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	close(stop)
	stepper.Wait()
	assert.LessOrEqual(t, h.Module.Instances(), workers)
	assert.Positive(t, h.Module.IdleClosed(), "the reaper and acquire closed idle instances meanwhile")
	clk.Step(time.Second)
	require.Eventually(t, func() bool {
		clk.Step(time.Millisecond)
		return h.Module.Instances() == 0
	}, time.Minute, time.Millisecond)
	assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.Instances.WithLabelValues("test")))
}

func TestReconcileResults(t *testing.T) {
	t.Run("error", func(t *testing.T) {
		h := run(t, script{Fail: "not yet"}, wasmtest.Options{})
		_, err := h.Reconcile(t.Context(), "ns", "a")
		require.EqualError(t, err, "not yet")
		assert.False(t, reconcile.IsTerminal(err))
		assert.Equal(t, 1, h.Module.Instances(), "a reconcile error keeps the instance")
	})
	t.Run("terminal", func(t *testing.T) {
		h := run(t, script{Fail: "invalid spec", Terminal: true}, wasmtest.Options{})
		_, err := h.Reconcile(t.Context(), "ns", "a")
		require.Error(t, err)
		assert.True(t, reconcile.IsTerminal(err))
		assert.Contains(t, err.Error(), "invalid spec")
	})
	t.Run("failed step", func(t *testing.T) {
		h := run(t, script{Steps: []step{{Op: abi.OpGet, Req: cmReq("ns", "nope")}}}, wasmtest.Options{})
		_, err := h.Reconcile(t.Context(), "ns", "a")
		require.ErrorContains(t, err, `step 0: got 404 NotFound`)
	})
}

func TestModuleCloseIsIdempotentAndStopsReconciles(t *testing.T) {
	h := run(t, script{}, wasmtest.Options{})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
	require.Equal(t, 1, h.Module.Instances())
	ctx := context.WithoutCancel(t.Context())
	require.NoError(t, h.Module.Close(ctx))
	require.NoError(t, h.Module.Close(ctx))
	assert.Equal(t, 0, h.Module.Instances())
	assert.Equal(t, 0, testutil.CollectAndCount(h.Metrics.HostCalls), "series of a closed module are deleted")
	assert.Equal(t, 0, testutil.CollectAndCount(h.Metrics.Instances))
	_, err = h.Reconcile(t.Context(), "ns", "a")
	assert.ErrorContains(t, err, `module "test": closed`)
	require.NoError(t, h.Compiled.Close(ctx))
	require.NoError(t, h.Compiled.Close(ctx))
	require.NoError(t, h.Runtime.Close(ctx))
	require.NoError(t, h.Runtime.Close(ctx))
	_, err = h.Runtime.Compile(ctx, "late", scriptGuest(t))
	assert.ErrorContains(t, err, `compile module "late": runtime closed`)
}

// startSpinning starts a reconcile that spins until cancel is called, and
// returns once the guest is running; done receives the reconcile's error.
func startSpinning(t *testing.T) (h *wasmtest.Harness, cancel func(), done <-chan error) {
	var logs logSink
	h = run(t, script{Steps: []step{{Log: "spinning"}, {Loop: true}}}, wasmtest.Options{
		Module:  host.ModuleOptions{ReconcileTimeout: time.Hour},
		Runtime: host.RuntimeOptions{Logger: logs.logger()},
	})
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error)
	go func() {
		_, err := h.Reconcile(ctx, "ns", "spinning")
		errs <- err
	}()
	require.Eventually(t, func() bool { return logs.find("spinning") != "" }, time.Minute, time.Millisecond)
	return h, cancel, errs
}

func TestReconcileWaitsForAFreeInstance(t *testing.T) {
	h, cancel, done := startSpinning(t)
	waitCtx, waitCancel := context.WithCancel(t.Context())
	waitCancel()
	_, err := h.Reconcile(waitCtx, "ns", "queued")
	assert.ErrorContains(t, err, "wait for an instance: context canceled")
	cancel()
	err = <-done
	assert.ErrorContains(t, err, "canceled")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapCanceled)))
}

// logSink collects log lines of a funcr logger.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lines = append(s.lines, args)
	}, funcr.Options{Verbosity: 2})
}

// count returns how many lines contain substr.
func (s *logSink) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func (s *logSink) find(substr ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
next:
	for _, l := range s.lines {
		for _, sub := range substr {
			if !strings.Contains(l, sub) {
				continue next
			}
		}
		return l
	}
	return ""
}

func TestGuestOutputBecomesTaggedLogLines(t *testing.T) {
	var logs logSink
	h := run(t, script{Steps: []step{
		{Print: "printed line"},
		{Log: "logged line"},
		{Op: abi.OpGet, Req: cmReq("ns", "missing"), Want: 404},
	}}, wasmtest.Options{Runtime: host.RuntimeOptions{Logger: logs.logger()}})
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
	assert.NotEmpty(t, logs.find(`"printed line"`, `"module"="test"`, `"stream"="stdout"`, `"reconcileID"`))
	assert.NotEmpty(t, logs.find(`"printed line"`, `"stream"="stderr"`, `"error"`))
	assert.NotEmpty(t, logs.find(`"logged line"`, `"module"="test"`, `"reconcileID"`, `"object"="ns/a"`))
	assert.NotEmpty(t, logs.find(`"host call failed"`, `"op"="get"`, `"code"=404`))
}

func TestNewModuleValidatesOptions(t *testing.T) {
	ctx := t.Context()
	h := run(t, script{}, wasmtest.Options{})
	base := host.ModuleOptions{Name: "m", Client: h.Client, Primary: configMaps, PrimaryKind: "ConfigMap"}
	for name, c := range map[string]struct {
		mod  func(*host.ModuleOptions)
		want string
	}{
		"no name":              {func(o *host.ModuleOptions) { o.Name = "" }, "name is required"},
		"no client":            {func(o *host.ModuleOptions) { o.Client = nil }, "client is required"},
		"no primary":           {func(o *host.ModuleOptions) { o.PrimaryKind = "" }, "primary resource and kind are required"},
		"memory over 4GiB":     {func(o *host.ModuleOptions) { o.MemoryLimitBytes = 5 << 30 }, "exceeds 4 GiB"},
		"memory below initial": {func(o *host.ModuleOptions) { o.MemoryLimitBytes = 1 << 20 }, "initial memory of"},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			c.mod(&o)
			_, err := h.Runtime.NewModule(ctx, h.Compiled, o)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func TestSeriesSurviveWhileAModuleOfTheSameNameRuns(t *testing.T) {
	h := run(t, script{}, wasmtest.Options{})
	ctx := context.WithoutCancel(t.Context())
	next, err := h.Runtime.NewModule(ctx, h.Compiled, host.ModuleOptions{Name: "test", Client: h.Client, Primary: configMaps, PrimaryKind: "ConfigMap"})
	require.NoError(t, err)
	require.NoError(t, h.Module.Close(ctx), "the old version goes during a hot swap")
	assert.Equal(t, 1, testutil.CollectAndCount(h.Metrics.Instances), "the new version still reports")
	require.NoError(t, next.Close(ctx))
	assert.Equal(t, 0, testutil.CollectAndCount(h.Metrics.Instances))
}

func TestSeriesGoWhenTheLastBusyInstanceOfAClosedModuleEnds(t *testing.T) {
	h, cancel, done := startSpinning(t)
	require.NoError(t, h.Module.Close(context.WithoutCancel(t.Context())))
	assert.Equal(t, 1, testutil.CollectAndCount(h.Metrics.Instances), "a busy instance keeps the series")
	cancel()
	require.Error(t, <-done)
	assert.Equal(t, 0, testutil.CollectAndCount(h.Metrics.Instances))
	assert.Equal(t, 0, testutil.CollectAndCount(h.Metrics.GuestMemory))
	assert.Equal(t, 0, testutil.CollectAndCount(h.Metrics.GuestTraps), "the trap is counted before the series go")
}
