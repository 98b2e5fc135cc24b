package manager_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/logging"
	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/metrics/metricstest"
	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/test/controlplane"
)

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// running is a started manager.
type running struct {
	*manager.Manager
	cancel context.CancelFunc
	done   chan error
}

func testLogger(t *testing.T) logr.Logger {
	log, err := logging.New(logging.Options{Format: logging.FormatText, Writer: testWriter{t}})
	require.NoError(t, err)
	return log
}

// testWriter sends log lines to t.Log while the test runs.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newManager(t *testing.T, mutate func(*manager.Options)) *manager.Manager {
	t.Helper()
	opts := manager.Options{
		Config: cp.Config(), MetricsBindAddress: "127.0.0.1:0", HealthProbeBindAddress: "127.0.0.1:0",
		GracefulShutdownTimeout: time.Minute, Logger: testLogger(t),
	}
	if mutate != nil {
		mutate(&opts)
	}
	m, err := manager.New(opts)
	require.NoError(t, err)
	return m
}

// start runs m until the test ends (or stop is called) and waits until it has
// started.
func start(t *testing.T, m *manager.Manager) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Manager: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	select {
	case <-m.Started():
	case err := <-r.done:
		t.Fatalf("manager did not start: %v", err)
	}
	return r
}

// stop shuts r down gracefully and returns Start's error.
func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err // for the cleanup
	return err
}

// widgets adds the native statussync controller, wrapped by wrap if not nil.
func widgets(t *testing.T, m *manager.Manager, name string, wrap func(reconcile.Reconciler) reconcile.Reconciler) {
	t.Helper()
	var r reconcile.Reconciler = statussync.New(statussync.FromRegistry(m.Informers()), dyn(t))
	if wrap != nil {
		r = wrap(r)
	}
	require.NoError(t, m.AddController(t.Context(), manager.ControllerSpec{Name: name, Reconciler: r, For: statussync.GVR, MaxConcurrentReconciles: 2}))
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestControllerLifecycle(t *testing.T) {
	installWidgetCRD(t)

	t.Run("startup", func(t *testing.T) {
		ns := controlplane.Namespace(t, cp)
		createWidget(t, ns, "before-start", "blue")
		m := newManager(t, nil)
		widgets(t, m, "statussync", nil)
		r := start(t, m)

		waitConverged(t, ns, 1)
		createWidget(t, ns, "after-start", "green")
		waitConverged(t, ns, 2)
		assert.True(t, r.Leading(), "without leader election the manager leads alone")
		assert.Equal(t, 1.0, metricstest.Value(t, m.Metrics().Gatherer(), "leader_election_master_status", map[string]string{"name": manager.DefaultLeaseName}),
			"a manager leading alone reports itself leader, so WreNoLeader does not fire on a single replica without election")

		require.Eventually(t, func() bool {
			code, _ := get(t, "http://"+r.HealthProbeAddress()+"/readyz")
			return code == http.StatusOK
		}, time.Minute, 20*time.Millisecond)
		code, _ := get(t, "http://"+r.HealthProbeAddress()+"/healthz")
		assert.Equal(t, http.StatusOK, code)

		code, body := get(t, "http://"+r.MetricsAddress()+"/metrics")
		require.Equal(t, http.StatusOK, code)
		for _, want := range []string{
			`controller_runtime_reconcile_total{controller="statussync",result="success"}`,
			`controller_runtime_max_concurrent_reconciles{controller="statussync"} 2`,
			`workqueue_adds_total{name="statussync"}`,
			`workqueue_depth_by_priority{name="statussync",priority="low"}`,
			`rest_client_requests_total{code="200"`,
			`wre_informer_references{group="demo.wre.dev",resource="widgets",version="v1"} 1`,
			`wre_informer_synced{group="demo.wre.dev",resource="widgets",version="v1"} 1`,
			"process_resident_memory_bytes",
		} {
			assert.Contains(t, body, want)
		}
		assert.GreaterOrEqual(t, metricstest.Value(t, r.Metrics().Gatherer(), "controller_runtime_reconcile_total",
			map[string]string{"controller": "statussync", "result": "success"}), 2.0)
		require.NoError(t, r.stop())
		assert.Equal(t, 0.0, metricstest.Value(t, m.Metrics().Gatherer(), "leader_election_master_status", map[string]string{"name": manager.DefaultLeaseName}),
			"a stopped manager leads no more")
	})

	t.Run("shutdown", func(t *testing.T) {
		ns := controlplane.Namespace(t, cp)
		entered := make(chan struct{})
		release := make(chan struct{})
		var cancelledBeforeRelease atomic.Bool
		m := newManager(t, nil)
		widgets(t, m, "statussync", func(next reconcile.Reconciler) reconcile.Reconciler {
			return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
				if req.Namespace == ns && req.Name == "slow" {
					close(entered)
					<-release
					cancelledBeforeRelease.Store(ctx.Err() != nil)
				}
				return next.Reconcile(ctx, req)
			})
		})
		r := start(t, m)
		createWidget(t, ns, "slow", "blue")
		<-entered

		stopped := make(chan error, 1)
		go func() { stopped <- r.stop() }()
		// The API server is not told anything until the in-flight reconcile ends.
		require.Eventually(t, func() bool {
			code, body := get(t, "http://"+r.HealthProbeAddress()+"/readyz")
			return code == http.StatusInternalServerError && strings.Contains(body, "workers not running")
		}, time.Minute, 10*time.Millisecond, "shutdown stops taking new work at once")
		select {
		case err := <-stopped:
			t.Fatalf("Start returned while a reconcile was in flight: %v", err)
		default:
		}
		close(release)
		require.NoError(t, <-stopped)
		assert.False(t, cancelledBeforeRelease.Load(), "graceful shutdown lets in-flight reconciles finish")
		waitConverged(t, ns, 1)
		assert.ErrorContains(t, m.AddController(t.Context(), manager.ControllerSpec{
			Name: "late", Reconciler: reconcile.Func(nil), For: configMaps,
		}), "manager is shutting down")
	})

	t.Run("leader_election", func(t *testing.T) {
		ns := controlplane.Namespace(t, cp)
		le := func(id string) func(*manager.Options) {
			return func(o *manager.Options) {
				o.LeaderElection = manager.LeaderElection{
					Enabled: true, LeaseName: "lifecycle", Namespace: ns, Identity: id,
					LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: time.Second,
				}
			}
		}
		var reconciledByB atomic.Int32
		a := newManager(t, le("a"))
		assert.Equal(t, "a", a.Identity(), "the identity is the lease holder's")
		host, _ := os.Hostname()
		assert.Equal(t, host, newManager(t, nil).Identity(), "without election: the host name")
		widgets(t, a, "statussync", nil)
		b := newManager(t, le("b"))
		widgets(t, b, "statussync", func(next reconcile.Reconciler) reconcile.Reconciler {
			return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
				if req.Namespace == ns {
					reconciledByB.Add(1)
				}
				return next.Reconcile(ctx, req)
			})
		})
		ra := start(t, a)
		require.Eventually(t, ra.Leading, time.Minute, 10*time.Millisecond)
		rb := start(t, b)
		createWidget(t, ns, "w1", "blue")
		waitConverged(t, ns, 1)

		assert.False(t, rb.Leading(), "the standby does not lead")
		assert.Zero(t, reconciledByB.Load(), "the standby runs no workers")
		assert.Equal(t, 1.0, metricstest.Value(t, a.Metrics().Gatherer(), "leader_election_master_status", map[string]string{"name": "lifecycle"}))
		assert.Equal(t, 0.0, metricstest.Value(t, b.Metrics().Gatherer(), "leader_election_master_status", map[string]string{"name": "lifecycle"}))
		require.Eventually(t, func() bool {
			code, _ := get(t, "http://"+rb.HealthProbeAddress()+"/readyz")
			return code == http.StatusOK
		}, time.Minute, 20*time.Millisecond, "a standby with synced caches is ready")

		began := time.Now()
		require.NoError(t, ra.stop())
		require.Eventually(t, rb.Leading, time.Minute, time.Millisecond)
		t.Logf("graceful handover took %s (retry period 1s, lease duration 4s)", time.Since(began))
		lease, err := kubernetes.NewForConfigOrDie(cp.Config()).CoordinationV1().Leases(ns).Get(t.Context(), "lifecycle", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "b", *lease.Spec.HolderIdentity)

		setDesired(t, ns, "w1", "green")
		waitConverged(t, ns, 1)
		assert.Positive(t, reconciledByB.Load(), "the new leader reconciles")
		assert.Equal(t, 0.0, metricstest.Value(t, a.Metrics().Gatherer(), "leader_election_master_status", map[string]string{"name": "lifecycle"}))
		require.NoError(t, rb.stop())
	})

	t.Run("reconcile_loop", func(t *testing.T) {
		ns := controlplane.Namespace(t, cp)
		var mu sync.Mutex
		attempts := map[string]int{}
		m := newManager(t, nil)
		widgets(t, m, "statussync", func(next reconcile.Reconciler) reconcile.Reconciler {
			return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
				if req.Namespace != ns {
					return next.Reconcile(ctx, req)
				}
				mu.Lock()
				attempts[req.Name]++
				n := attempts[req.Name]
				mu.Unlock()
				switch {
				case req.Name == "terminal":
					return reconcile.Result{}, reconcile.TerminalError(errors.New("cannot be fixed"))
				case n > 1:
				case req.Name == "flaky":
					return reconcile.Result{}, errors.New("transient")
				case req.Name == "panics":
					panic("reconciler bug")
				case req.Name == "conflict":
					// Another writer changes the object after the cache was read:
					// the status update carries a stale resourceVersion → 409.
					stale, err := statussync.FromRegistry(m.Informers()).Get(ns, "conflict")
					if err != nil {
						return reconcile.Result{}, err
					}
					if err := setDesiredErr(dyn(t), ns, "conflict", "changed"); err != nil {
						return reconcile.Result{}, err
					}
					u := stale.(*unstructured.Unstructured).DeepCopy()
					_ = unstructured.SetNestedField(u.Object, "blue", "status", "current")
					_, err = dyn(t).Resource(statussync.GVR).Namespace(ns).UpdateStatus(ctx, u, metav1.UpdateOptions{})
					assert.True(t, apierrors.IsConflict(err), "got %v", err)
					return reconcile.Result{}, err
				case req.Name == "requeue":
					return reconcile.Result{RequeueAfter: time.Millisecond}, nil
				}
				return next.Reconcile(ctx, req)
			})
		})
		r := start(t, m)
		for _, name := range []string{"flaky", "panics", "conflict", "requeue"} {
			createWidget(t, ns, name, "blue")
		}
		waitConverged(t, ns, 4)
		createWidget(t, ns, "terminal", "blue")
		// Terminal: reconciled once and not retried, while later work still flows.
		require.Eventually(t, func() bool {
			return metricstest.Value(t, m.Metrics().Gatherer(), "controller_runtime_terminal_reconcile_errors_total", map[string]string{"controller": "statussync"}) == 1
		}, time.Minute, 10*time.Millisecond)
		createWidget(t, ns, "last", "red")
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return attempts["last"] > 0
		}, time.Minute, 10*time.Millisecond)

		mu.Lock()
		assert.Equal(t, 1, attempts["terminal"], "a terminal error is not retried")
		for _, name := range []string{"flaky", "panics", "conflict", "requeue"} {
			assert.GreaterOrEqual(t, attempts[name], 2, name)
		}
		mu.Unlock()
		g := m.Metrics().Gatherer()
		labels := map[string]string{"controller": "statussync"}
		assert.Equal(t, 1.0, metricstest.Value(t, g, "controller_runtime_reconcile_panics_total", labels))
		assert.GreaterOrEqual(t, metricstest.Value(t, g, "controller_runtime_reconcile_errors_total", labels), 4.0)
		assert.GreaterOrEqual(t, metricstest.Value(t, g, "controller_runtime_reconcile_total", map[string]string{"controller": "statussync", "result": "requeue_after"}), 1.0)
		got, _, _ := unstructured.NestedString(getWidget(t, ns, "conflict").Object, "status", "current")
		assert.Equal(t, "changed", got, "the conflict was retried against the new spec")
		require.NoError(t, r.stop())
	})

	t.Run("add_remove_controller", func(t *testing.T) {
		m := newManager(t, nil)
		r := start(t, m)
		reconciled := make(chan reconcile.Request, 100)
		ns := controlplane.Namespace(t, cp)
		require.NoError(t, m.AddController(t.Context(), manager.ControllerSpec{
			Name: "configmaps", For: configMaps,
			Reconciler: reconcile.Func(func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
				if req.Namespace == ns {
					reconciled <- req
				}
				return reconcile.Result{}, nil
			}),
		}))
		_, ok := m.Informers().Lookup(configMaps)
		require.True(t, ok, "adding a controller acquires its informer")
		_, err := kubernetes.NewForConfigOrDie(cp.Config()).CoreV1().ConfigMaps(ns).Create(t.Context(),
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c1"}}, metav1.CreateOptions{})
		require.NoError(t, err)
		select {
		case req := <-reconciled:
			assert.Equal(t, "c1", req.Name)
		case <-t.Context().Done():
		}
		assert.ErrorContains(t, m.AddController(t.Context(), manager.ControllerSpec{
			Name: "configmaps", For: configMaps, Reconciler: reconcile.Func(nil),
		}), "exists")

		// RequeueAll reconciles every cached object again, though nothing
		// changed (a new module version was swapped in).
		_, err = kubernetes.NewForConfigOrDie(cp.Config()).CoreV1().ConfigMaps(ns).Create(t.Context(),
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c2"}}, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, "c2", (<-reconciled).Name)
		n, err := m.RequeueAll("configmaps")
		require.NoError(t, err)
		assert.GreaterOrEqual(t, n, 2, "every ConfigMap of the cluster-wide cache")
		again := map[string]bool{}
		for len(again) < 2 {
			select {
			case req := <-reconciled:
				again[req.Name] = true
			case <-t.Context().Done():
				t.Fatal("not requeued")
			}
		}
		assert.Equal(t, map[string]bool{"c1": true, "c2": true}, again)
		_, err = m.RequeueAll("nope")
		assert.ErrorContains(t, err, `requeue controller "nope": no such controller`)

		require.NoError(t, m.RemoveController(t.Context(), "configmaps"))
		_, ok = m.Informers().Lookup(configMaps)
		assert.False(t, ok, "removing the last controller of a resource releases its informer")
		_, ok = metricstest.Lookup(t, m.Metrics().Gatherer(), "controller_runtime_reconcile_total", map[string]string{"controller": "configmaps"})
		assert.False(t, ok, "its metric series are gone")
		assert.ErrorContains(t, m.RemoveController(t.Context(), "configmaps"), "no such controller")
		require.NoError(t, r.stop())
	})
}

func getWidget(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := dyn(t).Resource(statussync.GVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return u
}

// TestRequeueAllBeforeStart: a controller whose manager has not started has
// nothing cached, so RequeueAll adds nothing; its initial list will.
func TestRequeueAllBeforeStart(t *testing.T) {
	m := newManager(t, nil)
	require.NoError(t, m.AddController(t.Context(), manager.ControllerSpec{Name: "idle", For: configMaps, Reconciler: reconcile.Func(nil)}))
	n, err := m.RequeueAll("idle")
	require.NoError(t, err)
	assert.Zero(t, n)
	require.NoError(t, m.RemoveController(t.Context(), "idle"), "stops its queue")
}
