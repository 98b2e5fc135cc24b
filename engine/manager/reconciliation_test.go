package manager_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/leader"
	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/reconcile"
	"github.com/wre-dev/wre/test/controlplane"
)

func TestReconciliation(t *testing.T) {
	installWidgetCRD(t)
	ns := controlplane.Namespace(t, cp)
	for i := range 10 {
		createWidget(t, ns, fmt.Sprintf("pre-%d", i), fmt.Sprint("v", i))
	}
	m := newManager(t, nil)
	widgets(t, m, "statussync", nil)
	r := start(t, m)
	waitConverged(t, ns, 10)

	for i := range 5 {
		setDesired(t, ns, fmt.Sprintf("pre-%d", i), "updated")
	}
	waitConverged(t, ns, 10)

	t.Run("api_server_restart", func(t *testing.T) {
		for i := range 5 {
			createWidget(t, ns, fmt.Sprintf("before-%d", i), "x")
		}
		for i := range 3 {
			setDesired(t, ns, fmt.Sprintf("pre-%d", i), "before-restart")
		}
		require.NoError(t, cp.StopAPIServer())
		select {
		case err := <-r.done:
			t.Fatalf("manager stopped while the API server was down: %v", err)
		default:
		}
		require.NoError(t, cp.StartAPIServer(t.Context()))
		// Created while the engine's watches are still reconnecting.
		for i := range 5 {
			createWidget(t, ns, fmt.Sprintf("during-%d", i), "y")
		}
		waitConverged(t, ns, 20)
		for i := range 5 {
			createWidget(t, ns, fmt.Sprintf("after-%d", i), "z")
		}
		waitConverged(t, ns, 25)
		select {
		case err := <-r.done:
			t.Fatalf("manager stopped: %v", err)
		default:
		}
	})
	require.NoError(t, r.stop())
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
