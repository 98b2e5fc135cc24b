package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/wre-dev/wre/engine/controller"
	"github.com/wre-dev/wre/engine/logging"
	"github.com/wre-dev/wre/engine/metrics"
	"github.com/wre-dev/wre/engine/metrics/metricstest"
	"github.com/wre-dev/wre/engine/queue"
	"github.com/wre-dev/wre/host/reconcile"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func req(name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
}

// limiter wraps a rate limiter that never delays and records what the
// controller asked of it.
type limiter struct {
	mu     sync.Mutex
	events []string
	workqueue.TypedRateLimiter[reconcile.Request]
}

func newLimiter() *limiter {
	return &limiter{TypedRateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](0, 0)}
}

func (l *limiter) When(r reconcile.Request) time.Duration {
	l.record("when")
	return l.TypedRateLimiter.When(r)
}

func (l *limiter) Forget(r reconcile.Request) {
	l.record("forget")
	l.TypedRateLimiter.Forget(r)
}

func (l *limiter) record(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *limiter) Events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		out = append(out, m)
	}
	return out
}

type fixture struct {
	ctrl    *controller.Controller
	reg     *metrics.Registry
	limiter *limiter
	clock   *clocktesting.FakeClock
	logs    *syncBuffer
	cancel  context.CancelFunc
	started chan error
}

func newFixture(t *testing.T, r reconcile.Reconciler, mutate func(*controller.Options)) *fixture {
	t.Helper()
	f := &fixture{reg: metrics.New(), limiter: newLimiter(), clock: clocktesting.NewFakeClock(time.Now()), logs: &syncBuffer{}}
	log, err := logging.New(logging.Options{Writer: f.logs, Verbosity: 1})
	require.NoError(t, err)
	opts := controller.Options{
		Name: "widgets", RateLimiter: f.limiter, Clock: f.clock, Logger: log, Metrics: f.reg,
		ReconcileTimeout: controller.NoReconcileTimeout,
	}
	if mutate != nil {
		mutate(&opts)
	}
	f.ctrl, err = controller.New(r, opts)
	require.NoError(t, err)
	return f
}

func (f *fixture) start(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	f.cancel = cancel
	f.started = make(chan error, 1)
	go func() { f.started <- f.ctrl.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-f.ctrl.Done()
	})
}

func (f *fixture) result(t *testing.T, result string) float64 {
	return metricstest.Value(t, f.reg.Gatherer(), "controller_runtime_reconcile_total", map[string]string{"controller": "widgets", "result": result})
}

func (f *fixture) counter(t *testing.T, name string) float64 {
	return metricstest.Value(t, f.reg.Gatherer(), name, map[string]string{"controller": "widgets"})
}

// calls returns a reconciler that reports each call on the returned channel when
// it starts and answers with the outcomes in order (the last one repeats).
func calls(outcomes ...func(ctx context.Context) (reconcile.Result, error)) (reconcile.Reconciler, chan reconcile.Request) {
	ch := make(chan reconcile.Request, 100)
	var mu sync.Mutex
	n := 0
	return reconcile.Func(func(ctx context.Context, r reconcile.Request) (reconcile.Result, error) {
		mu.Lock()
		o := outcomes[min(n, len(outcomes)-1)]
		n++
		mu.Unlock()
		ch <- r
		return o(ctx)
	}), ch
}

func ok(context.Context) (reconcile.Result, error) { return reconcile.Result{}, nil }

func receive(t *testing.T, ch <-chan reconcile.Request) reconcile.Request {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-t.Context().Done():
		t.Fatal("test ended before the reconcile")
	}
	return reconcile.Request{}
}

func TestNewValidation(t *testing.T) {
	r := reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil })
	tests := []struct {
		name string
		r    reconcile.Reconciler
		opts controller.Options
		want string
	}{
		{"no name", r, controller.Options{}, "Options.Name is required"},
		{"nil reconciler", nil, controller.Options{Name: "a"}, `new controller "a": reconciler is nil`},
		{"negative workers", r, controller.Options{Name: "a", MaxConcurrentReconciles: -1}, "must not be negative"},
		{"negative timeout", r, controller.Options{Name: "a", ReconcileTimeout: -time.Second}, "use NoReconcileTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := controller.New(tt.r, tt.opts)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	t.Run("defaults", func(t *testing.T) {
		reg := metrics.New()
		c, err := controller.New(r, controller.Options{Name: "d", Metrics: reg})
		require.NoError(t, err)
		assert.Equal(t, "d", c.Name())
		assert.Equal(t, 1.0, metricstest.Value(t, reg.Gatherer(), "controller_runtime_max_concurrent_reconciles", map[string]string{"controller": "d"}))
		require.NoError(t, c.Stop(t.Context()))
		c2, err := controller.New(r, controller.Options{Name: "private-registry"})
		require.NoError(t, err)
		require.NoError(t, c2.Stop(t.Context()))
	})
}

func TestOutcomes(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		outcome    func(ctx context.Context) (reconcile.Result, error)
		result     string
		limiter    []string // rate limiter calls after one reconcile
		retried    bool     // reconciled again without a clock step
		counters   map[string]float64
		logMessage string
	}{
		{
			name: "success forgets", outcome: ok, result: metrics.ResultSuccess,
			limiter: []string{"forget"}, logMessage: "Reconcile done",
		},
		{
			name:    "error is rate limited and retried",
			outcome: func(context.Context) (reconcile.Result, error) { return reconcile.Result{}, boom },
			result:  metrics.ResultError, limiter: []string{"when"}, retried: true,
			counters:   map[string]float64{"controller_runtime_reconcile_errors_total": 1, "controller_runtime_terminal_reconcile_errors_total": 0},
			logMessage: "Reconciler error",
		},
		{
			name: "terminal error is forgotten, not retried",
			outcome: func(context.Context) (reconcile.Result, error) {
				return reconcile.Result{}, reconcile.TerminalError(boom)
			},
			result: metrics.ResultError, limiter: []string{"forget"},
			counters:   map[string]float64{"controller_runtime_reconcile_errors_total": 1, "controller_runtime_terminal_reconcile_errors_total": 1},
			logMessage: "Reconciler error, not retried",
		},
		{
			name: "error wins over result",
			outcome: func(context.Context) (reconcile.Result, error) {
				return reconcile.Result{RequeueAfter: time.Hour}, boom
			},
			result: metrics.ResultError, limiter: []string{"when"}, retried: true,
			logMessage: "Reconciler error",
		},
		{
			name:    "panic becomes a retried error",
			outcome: func(context.Context) (reconcile.Result, error) { panic("nil map") },
			result:  metrics.ResultError, limiter: []string{"when"}, retried: true,
			counters:   map[string]float64{"controller_runtime_reconcile_panics_total": 1},
			logMessage: "Reconciler error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ch := calls(tt.outcome, ok)
			f := newFixture(t, r, nil)
			f.ctrl.Enqueue(req("a"))
			f.start(t)
			assert.Equal(t, req("a"), receive(t, ch))
			if tt.retried {
				assert.Equal(t, req("a"), receive(t, ch), "retried")
			}
			require.NoError(t, f.ctrl.Stop(t.Context()))
			require.NoError(t, <-f.started)

			assert.Equal(t, tt.limiter, f.limiter.Events()[:len(tt.limiter)])
			assert.Equal(t, 1.0, f.result(t, tt.result))
			for name, want := range tt.counters {
				assert.Equal(t, want, f.counter(t, name), name)
			}
			lines := f.logs.Lines(t)
			var found bool
			for _, l := range lines {
				if l["msg"] == tt.logMessage {
					found = true
					assert.Equal(t, "widgets", l["controller"])
					assert.Equal(t, "ns", l["namespace"])
					assert.Equal(t, "a", l["name"])
					assert.NotEmpty(t, l["reconcileID"])
				}
			}
			assert.True(t, found, "log line %q", tt.logMessage)
		})
	}
}

func TestRequeueAfter(t *testing.T) {
	r, ch := calls(func(context.Context) (reconcile.Result, error) {
		return reconcile.Result{RequeueAfter: time.Minute}, nil
	}, ok)
	f := newFixture(t, r, nil)
	f.ctrl.Enqueue(req("a"))
	f.start(t)
	receive(t, ch)
	// The queue's timer for the delayed request joins the metrics ticker.
	require.Eventually(t, func() bool { return f.clock.Waiters() == 2 }, 10*time.Second, time.Millisecond)
	select {
	case <-ch:
		t.Fatal("reconciled again before RequeueAfter passed")
	default:
	}
	f.clock.Step(time.Minute)
	receive(t, ch)
	require.NoError(t, f.ctrl.Stop(t.Context()))
	assert.Equal(t, []string{"forget", "forget"}, f.limiter.Events())
	assert.Equal(t, 1.0, f.result(t, metrics.ResultRequeueAfter))
	assert.Equal(t, 1.0, f.result(t, metrics.ResultSuccess))
}

func TestReconcileTimeout(t *testing.T) {
	var cause error
	r, ch := calls(func(ctx context.Context) (reconcile.Result, error) {
		<-ctx.Done()
		cause = context.Cause(ctx)
		return reconcile.Result{}, ctx.Err()
	}, ok)
	f := newFixture(t, r, func(o *controller.Options) { o.ReconcileTimeout = 30 * time.Second })
	f.ctrl.Enqueue(req("a"))
	f.start(t)
	receive(t, ch)
	f.clock.Step(30 * time.Second)
	receive(t, ch) // retried after the timeout error
	require.NoError(t, f.ctrl.Stop(t.Context()))
	assert.ErrorContains(t, cause, "reconcile timed out")
	assert.Equal(t, 1.0, f.counter(t, "controller_runtime_reconcile_timeouts_total"))
	assert.Equal(t, 1.0, f.result(t, metrics.ResultError))
}

func TestReconcileIDAndLoggerInContext(t *testing.T) {
	var ids []string
	var mu sync.Mutex
	r, ch := calls(func(ctx context.Context) (reconcile.Result, error) {
		logr.FromContextOrDiscard(ctx).Info("from reconciler")
		return reconcile.Result{}, errors.New("again")
	}, func(ctx context.Context) (reconcile.Result, error) {
		logr.FromContextOrDiscard(ctx).Info("from reconciler")
		return reconcile.Result{}, nil
	})
	f := newFixture(t, r, nil)
	f.ctrl.Enqueue(req("a"))
	f.start(t)
	receive(t, ch)
	receive(t, ch)
	require.NoError(t, f.ctrl.Stop(t.Context()))
	for _, l := range f.logs.Lines(t) {
		if l["msg"] == "from reconciler" {
			mu.Lock()
			ids = append(ids, l["reconcileID"].(string))
			mu.Unlock()
			assert.Equal(t, "widgets", l["controller"])
			assert.Equal(t, "a", l["name"])
		}
	}
	require.Len(t, ids, 2)
	assert.NotEqual(t, ids[0], ids[1], "every attempt has its own reconcile ID")
	assert.Len(t, ids[0], 36, "uuid")
}

func TestConcurrentWorkersAndPriority(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	inFlight := 0
	reached := make(chan struct{})
	r, ch := calls(func(context.Context) (reconcile.Result, error) {
		mu.Lock()
		inFlight++
		if inFlight == 3 {
			close(reached)
		}
		mu.Unlock()
		<-release
		return reconcile.Result{}, nil
	})
	f := newFixture(t, r, func(o *controller.Options) { o.MaxConcurrentReconciles = 3 })
	for _, n := range []string{"a", "b", "c"} {
		f.ctrl.AddWithPriority(req(n), queue.PriorityHigh)
	}
	f.ctrl.Enqueue(req("a")) // deduplicated with the queued a
	assert.Equal(t, 3, f.ctrl.Len())
	f.start(t)
	<-reached
	assert.Equal(t, 3.0, f.counter(t, "controller_runtime_active_workers"))
	close(release)
	got := map[string]bool{}
	for range 3 {
		got[receive(t, ch).Name] = true
	}
	assert.Equal(t, map[string]bool{"a": true, "b": true, "c": true}, got)
	require.NoError(t, f.ctrl.Stop(t.Context()))
	assert.Equal(t, 0.0, f.counter(t, "controller_runtime_active_workers"))
	assert.Equal(t, 3.0, f.result(t, metrics.ResultSuccess))
}

func TestStop(t *testing.T) {
	t.Run("graceful stop lets in-flight finish and starts no new work", func(t *testing.T) {
		entered := make(chan struct{}, 2)
		release := make(chan struct{})
		var sawCancel bool
		r, ch := calls(func(ctx context.Context) (reconcile.Result, error) {
			entered <- struct{}{}
			<-release
			sawCancel = ctx.Err() != nil
			return reconcile.Result{}, nil
		})
		f := newFixture(t, r, nil)
		f.ctrl.Enqueue(req("a"))
		f.start(t)
		<-entered
		f.ctrl.Enqueue(req("b"))
		stopped := make(chan error, 1)
		assert.True(t, f.ctrl.Running())
		go func() { stopped <- f.ctrl.Stop(t.Context()) }()
		require.Eventually(t, func() bool { return !f.ctrl.Running() }, 10*time.Second, time.Millisecond)
		select {
		case <-stopped:
			t.Fatal("Stop returned while a reconcile was in flight")
		case <-f.ctrl.Done():
			t.Fatal("workers stopped while a reconcile was in flight")
		default:
		}
		close(release)
		require.NoError(t, <-stopped)
		require.NoError(t, <-f.started)
		assert.Equal(t, req("a"), receive(t, ch))
		assert.Empty(t, ch, "b was queued but not started after Stop")
		assert.False(t, sawCancel, "graceful stop does not cancel in-flight reconciles")
		assert.ErrorIs(t, f.ctrl.Start(t.Context()), controller.ErrStarted)
		require.NoError(t, f.ctrl.Stop(t.Context()), "Stop is idempotent")
	})
	hardStops := []struct {
		name string
		stop func(t *testing.T, f *fixture)
	}{
		{"stop timeout cancels in-flight reconciles", func(t *testing.T, f *fixture) {
			expired, cancel := context.WithCancel(t.Context())
			cancel()
			err := f.ctrl.Stop(expired)
			assert.ErrorContains(t, err, `stop controller "widgets": in-flight reconciles did not finish in time`)
		}},
		{"cancelling Start stops at once", func(t *testing.T, f *fixture) {
			f.cancel()
			require.NoError(t, <-f.started)
		}},
	}
	for _, tt := range hardStops {
		t.Run(tt.name, func(t *testing.T) {
			var cancelled error
			r, ch := calls(func(ctx context.Context) (reconcile.Result, error) {
				<-ctx.Done()
				cancelled = ctx.Err()
				return reconcile.Result{}, ctx.Err()
			})
			f := newFixture(t, r, nil)
			f.ctrl.Enqueue(req("a"))
			f.start(t)
			receive(t, ch)
			tt.stop(t, f)
			<-f.ctrl.Done()
			assert.ErrorIs(t, cancelled, context.Canceled)
			require.NoError(t, f.ctrl.Stop(t.Context()))
		})
	}
	t.Run("stop before start", func(t *testing.T) {
		r, _ := calls(ok)
		f := newFixture(t, r, nil)
		assert.False(t, f.ctrl.Running())
		require.NoError(t, f.ctrl.Stop(t.Context()))
		<-f.ctrl.Done()
		assert.ErrorIs(t, f.ctrl.Start(t.Context()), controller.ErrStarted)
	})
}

// TestRepeatedErrorsAreCollapsed: while the API server is down every retry of
// a request fails alike. The error is logged once, the repeats only at V(1)
// and counted when the run ends; another error starts a new run; the retries
// keep their rate-limited backoff.
func TestRepeatedErrorsAreCollapsed(t *testing.T) {
	refused := func(context.Context) (reconcile.Result, error) {
		return reconcile.Result{}, errors.New("dial tcp: connection refused")
	}
	forbidden := func(context.Context) (reconcile.Result, error) {
		return reconcile.Result{}, errors.New("forbidden")
	}
	r, ch := calls(refused, refused, refused, refused, forbidden, forbidden, ok)
	f := newFixture(t, r, nil)
	f.ctrl.Enqueue(req("a"))
	f.start(t)
	for range 7 {
		assert.Equal(t, req("a"), receive(t, ch))
	}
	require.NoError(t, f.ctrl.Stop(t.Context()))
	require.NoError(t, <-f.started)

	var got []string
	for _, l := range f.logs.Lines(t) {
		switch l["msg"] {
		case "Reconciler error":
			got = append(got, fmt.Sprintf("%s error: %v", l["level"], l["err"]))
		case "Reconciler error repeated", "Reconciler error repeated while retrying":
			got = append(got, fmt.Sprintf("%s %s: %s ×%v", l["level"], l["msg"], l["error"], l["repeats"]))
		}
	}
	assert.Equal(t, []string{
		"ERROR error: dial tcp: connection refused",
		"DEBUG+3 Reconciler error repeated: dial tcp: connection refused ×1",
		"DEBUG+3 Reconciler error repeated: dial tcp: connection refused ×2",
		"DEBUG+3 Reconciler error repeated: dial tcp: connection refused ×3",
		"INFO Reconciler error repeated while retrying: dial tcp: connection refused ×3",
		"ERROR error: forbidden",
		"DEBUG+3 Reconciler error repeated: forbidden ×1",
		"INFO Reconciler error repeated while retrying: forbidden ×1",
	}, got)
	assert.Equal(t, []string{"when", "when", "when", "when", "when", "when", "forget"}, f.limiter.Events(),
		"every failure is retried with backoff")
	assert.Equal(t, 6.0, f.counter(t, "controller_runtime_reconcile_errors_total"))
}
