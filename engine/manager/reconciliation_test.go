package manager_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/leader"
	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/test/controlplane"
)

func TestReconciliation(t *testing.T) {
	installWidgetCRD(t)
	ns := controlplane.Namespace(t, cp)
	for i := range 10 {
		createWidget(t, ns, fmt.Sprintf("pre-%d", i), fmt.Sprint("v", i))
	}
	m := newManager(t, nil)
	gate := newOutageGate(ns, statussync.FromRegistry(m.Informers()),
		statussync.New(statussync.FromRegistry(m.Informers()), dyn(t)))
	require.NoError(t, m.AddController(t.Context(), manager.ControllerSpec{
		Name: "statussync", Reconciler: gate, For: statussync.GVR,
		// Room for every reconcile the gate holds at once, and more.
		MaxConcurrentReconciles: 16,
		// The default's exponential backoff has the same shape with a
		// 1000 s cap: after an outage of d its next retry comes up to d
		// later. Capping it at 1 s keeps the test short.
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, time.Second),
	}))
	r := start(t, m)
	waitConverged(t, ns, 10)

	for i := range 5 {
		setDesired(t, ns, fmt.Sprintf("pre-%d", i), "updated")
	}
	waitConverged(t, ns, 10)

	// api_server_restart: objects changed before, right after and well after
	// an API server outage all converge, and the engine keeps running
	// through it.
	//
	// What would make it fail:
	//   - failed writes not retried: the "before" changes are held in
	//     reconciles that were already running when the API server went away,
	//     so their only status write fails. Nothing else brings them back: the
	//     relist after the restart re-delivers them with an unchanged
	//     resourceVersion, which the event handler drops as a resync, and
	//     there is no periodic resync. Only the rate-limited requeue of the
	//     failed reconcile retries them; the test also sees a second failure
	//     during the outage, i.e. a retry with backoff.
	//   - watches not re-established: a new object reaches the engine only
	//     through its informer's reflector. "during" objects are created the
	//     moment the restarted API server is ready, so they are seen only if
	//     the reflector recovered (its relist or watch); "after" objects are
	//     created once those converged, when the reflector has listed again
	//     and is watching, so only a live watch (or, should the watch keep
	//     failing, yet another relist) delivers them. An informer that gave up
	//     on the connection error, or never watched again, leaves them
	//     unconverged and waitConverged times out.
	t.Run("api_server_restart", func(t *testing.T) {
		gate.arm()
		t.Cleanup(gate.release) // a failing test must not leave reconciles blocked
		var before []string
		for i := range 5 {
			name := fmt.Sprintf("before-%d", i)
			createWidget(t, ns, name, "x")
			before = append(before, name)
		}
		for i := range 3 {
			name := fmt.Sprintf("pre-%d", i)
			setDesired(t, ns, name, "before-restart")
			before = append(before, name)
		}
		// Every "before" change has been seen by the engine and is in a
		// reconcile that is about to write it, but has not.
		require.Eventually(t, func() bool { return gate.holding(before) }, time.Minute, 10*time.Millisecond,
			"reconciles of %v are held before writing", before)

		require.NoError(t, cp.StopAPIServer())
		down := true
		t.Cleanup(func() { // leave the API server up for the tests that follow
			if down {
				assert.NoError(t, cp.StartAPIServer(context.Background()))
			}
		})
		gate.release()
		require.Eventually(t, func() bool {
			requireRunning(t, r)
			return gate.failedAtLeast(before, 2)
		}, time.Minute, 10*time.Millisecond, "status writes of %v fail and are retried while the API server is down", before)
		code, _ := get(t, "http://"+r.HealthProbeAddress()+"/healthz")
		assert.Equal(t, http.StatusOK, code, "/healthz answers while the API server is down")
		requireRunning(t, r)

		restarted := time.Now()
		require.NoError(t, cp.StartAPIServer(t.Context()))
		down = false
		t.Logf("API server ready %s after the start", time.Since(restarted).Round(time.Millisecond))
		// The first moment the API server accepts them.
		for i := range 5 {
			createWidget(t, ns, fmt.Sprintf("during-%d", i), "y")
		}
		waitConverged(t, ns, 20)
		t.Logf("before and during converged %s after the start", time.Since(restarted).Round(time.Millisecond))
		for i := range 5 {
			createWidget(t, ns, fmt.Sprintf("after-%d", i), "z")
		}
		waitConverged(t, ns, 25)
		requireRunning(t, r)
	})
	require.NoError(t, r.stop())
}

// requireRunning fails the test if r's Start has returned.
func requireRunning(t *testing.T, r *running) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		require.FailNow(t, "manager stopped", "%v", err)
	default:
	}
}

// outageGate wraps the Widget reconciler of the API server restart test.
// Once armed, a reconcile of a Widget in ns whose cached spec.desired differs
// from status.current — one about to write — blocks until release. It counts
// every reconcile of ns that fails.
type outageGate struct {
	ns    string
	cache statussync.Getter
	next  reconcile.Reconciler

	mu       sync.Mutex
	open     chan struct{} // nil until armed; closed by release
	held     map[string]bool
	failures map[string]int
	once     sync.Once
}

var _ reconcile.Reconciler = (*outageGate)(nil)

func newOutageGate(ns string, cache statussync.Getter, next reconcile.Reconciler) *outageGate {
	return &outageGate{ns: ns, cache: cache, next: next, held: map[string]bool{}, failures: map[string]int{}}
}

func (g *outageGate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *outageGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		g.once.Do(func() { close(g.open) })
	}
}

func (g *outageGate) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.Namespace != g.ns {
		return g.next.Reconcile(ctx, req)
	}
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	if open != nil && g.needsWrite(req) {
		g.mu.Lock()
		g.held[req.Name] = true
		g.mu.Unlock()
		select {
		case <-open:
		case <-ctx.Done():
			return reconcile.Result{}, ctx.Err()
		}
	}
	res, err := g.next.Reconcile(ctx, req)
	if err != nil {
		g.mu.Lock()
		g.failures[req.Name]++
		g.mu.Unlock()
	}
	return res, err
}

func (g *outageGate) needsWrite(req reconcile.Request) bool {
	obj, err := g.cache.Get(req.Namespace, req.Name)
	if err != nil {
		return false
	}
	u := obj.(*unstructured.Unstructured)
	desired, _, _ := unstructured.NestedString(u.Object, "spec", "desired")
	current, _, _ := unstructured.NestedString(u.Object, "status", "current")
	return desired != current
}

// holding reports whether a reconcile of each of names has been held.
func (g *outageGate) holding(names []string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range names {
		if !g.held[n] {
			return false
		}
	}
	return true
}

// failedAtLeast reports whether each of names has failed n times or more.
func (g *outageGate) failedAtLeast(names []string, n int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, name := range names {
		if g.failures[name] < n {
			return false
		}
	}
	return true
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		opts manager.Options
		want string
	}{
		{"no config", manager.Options{}, "Options.Config is required"},
		{"negative qps", manager.Options{Config: &rest.Config{Host: "https://x"}, QPS: -1}, "must not be negative"},
		{"election outside a cluster needs a namespace", manager.Options{Config: &rest.Config{Host: "https://x"},
			LeaderElection: manager.LeaderElection{Enabled: true}}, "LeaderElection.Namespace is required"},
		{"lease not longer than renew deadline", manager.Options{Config: &rest.Config{Host: "https://x"},
			LeaderElection: manager.LeaderElection{Enabled: true, Namespace: "ns", LeaseDuration: time.Second, RenewDeadline: 2 * time.Second}},
			"lease duration 1s must be greater than renew deadline 2s"},
		{"renew deadline not longer than retry × jitter", manager.Options{Config: &rest.Config{Host: "https://x"},
			LeaderElection: manager.LeaderElection{Enabled: true, Namespace: "ns", RetryPeriod: 10 * time.Second}},
			"renew deadline 10s must be greater than retry period 10s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := manager.New(tt.opts)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	unreachable := "https://" + closed.Addr().String()
	require.NoError(t, closed.Close())

	tests := []struct {
		name   string
		mutate func(*manager.Options)
		want   string
	}{
		{"unreachable API server", func(o *manager.Options) { o.Config = &rest.Config{Host: unreachable} }, "reach API server " + unreachable},
		{"metrics address in use", func(o *manager.Options) { o.MetricsBindAddress = busy.Addr().String() }, `serve metrics on "` + busy.Addr().String()},
		{"probe address in use", func(o *manager.Options) { o.HealthProbeBindAddress = busy.Addr().String() }, `serve probes on "` + busy.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, tt.mutate)
			err := m.Start(t.Context())
			assert.ErrorContains(t, err, tt.want)
			assert.ErrorContains(t, m.Start(t.Context()), "already started")
		})
	}
	t.Run("invalid spec", func(t *testing.T) {
		m := newManager(t, nil)
		for _, spec := range []manager.ControllerSpec{
			{},
			{Name: "a"},
			{Name: "a", Reconciler: reconcile.Func(nil)},
			{Name: "a", Reconciler: reconcile.Func(nil), For: configMaps, Watches: []manager.Watch{{Resource: configMaps}}},
		} {
			assert.ErrorContains(t, m.AddController(t.Context(), spec), "add controller")
		}
	})
	t.Run("unknown resource", func(t *testing.T) {
		m := newManager(t, func(o *manager.Options) {
			o.MetricsBindAddress, o.HealthProbeBindAddress = manager.DisabledAddress, manager.DisabledAddress
		})
		r := start(t, m)
		err := m.AddController(context.Background(), manager.ControllerSpec{
			Name: "nope", Reconciler: reconcile.Func(nil), For: configMaps,
			Owns: []schema.GroupVersionResource{{Group: "nope.wre.dev", Version: "v1", Resource: "nothings"}},
		})
		assert.ErrorContains(t, err, `add controller "nope": acquire informer`)
		_, ok := m.Informers().Lookup(configMaps)
		assert.False(t, ok, "a failed add releases what it acquired")
		require.NoError(t, r.stop())
	})
}

func TestLostLease(t *testing.T) {
	installWidgetCRD(t)
	ns := controlplane.Namespace(t, cp)
	entered := make(chan struct{})
	var cancelled atomic.Bool
	m := newManager(t, func(o *manager.Options) {
		o.LeaderElection = manager.LeaderElection{
			Enabled: true, LeaseName: "lost", Namespace: ns, Identity: "a",
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond,
		}
	})
	widgets(t, m, "statussync", func(next reconcile.Reconciler) reconcile.Reconciler {
		return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			if req.Namespace == ns {
				close(entered)
				<-ctx.Done()
				cancelled.Store(true)
				return reconcile.Result{}, ctx.Err()
			}
			return next.Reconcile(ctx, req)
		})
	})
	r := start(t, m)
	require.Eventually(t, r.Leading, time.Minute, 10*time.Millisecond)
	createWidget(t, ns, "inflight", "x")
	<-entered

	require.NoError(t, cp.StopAPIServer())
	err := <-r.done
	r.done <- err
	require.NoError(t, cp.StartAPIServer(context.Background()))
	assert.ErrorIs(t, err, leader.ErrLost)
	assert.True(t, cancelled.Load(), "losing the lease cancels in-flight reconciles")
	assert.False(t, r.Leading())
}

// TestShutdownTimeoutKeepsLease: a reconcile that outlives the graceful
// shutdown timeout and its cancellation keeps the lease held, so no standby
// starts workers while it may still write; one that returns when cancelled
// lets the lease go.
func TestShutdownTimeoutKeepsLease(t *testing.T) {
	installWidgetCRD(t)
	tests := []struct {
		name string
		// reconcile blocks until the test ends, returning earlier if it
		// honours ctx.
		reconcile func(ctx context.Context, testDone <-chan struct{})
		holder    string
	}{
		{"ignores cancellation", func(_ context.Context, testDone <-chan struct{}) { <-testDone }, "a"},
		{"honours cancellation", func(ctx context.Context, testDone <-chan struct{}) {
			select {
			case <-ctx.Done():
			case <-testDone:
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := controlplane.Namespace(t, cp)
			entered := make(chan struct{})
			testDone := make(chan struct{})
			m := newManager(t, func(o *manager.Options) {
				o.GracefulShutdownTimeout = 200 * time.Millisecond
				o.LeaderElection = manager.LeaderElection{
					Enabled: true, LeaseName: "kept", Namespace: ns, Identity: "a",
					LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond,
				}
			})
			widgets(t, m, "statussync", func(next reconcile.Reconciler) reconcile.Reconciler {
				return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
					if req.Namespace == ns {
						close(entered)
						tt.reconcile(ctx, testDone)
						return reconcile.Result{}, nil
					}
					return next.Reconcile(ctx, req)
				})
			})
			r := start(t, m)
			defer close(testDone) // before the cleanup of start: goleak
			require.Eventually(t, r.Leading, time.Minute, 10*time.Millisecond)
			createWidget(t, ns, "stuck", "x")
			<-entered

			err := r.stop()
			assert.ErrorContains(t, err, "in-flight reconciles did not finish in time")
			l, err := kubernetes.NewForConfigOrDie(cp.Config()).CoordinationV1().Leases(ns).Get(t.Context(), "kept", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, tt.holder, ptr.Deref(l.Spec.HolderIdentity, ""))
		})
	}
}
