package leader_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/leader"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(enginetest.RunMain(m, &cp)) }

func TestNew(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	tests := []struct {
		name string
		opts leader.Options
		want string
	}{
		{"no config", leader.Options{LeaseName: "l", Namespace: "ns"}, "Options.Config is required"},
		{"no name", leader.Options{Config: cfg, Namespace: "ns"}, "LeaseName and Options.Namespace are required"},
		{"lease shorter than deadline", leader.Options{Config: cfg, LeaseName: "l", Namespace: "ns", LeaseDuration: time.Second}, "lease duration 1s must be greater than renew deadline 10s"},
		{"deadline shorter than retries", leader.Options{Config: cfg, LeaseName: "l", Namespace: "ns", RetryPeriod: 9 * time.Second}, "renew deadline 10s must be greater than retry period 9s"},
		{"negative retry", leader.Options{Config: cfg, LeaseName: "l", Namespace: "ns", RetryPeriod: -time.Second}, "retry period -1s must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := leader.New(tt.opts)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	e, err := leader.New(leader.Options{Config: cfg, LeaseName: "l", Namespace: "ns"})
	require.NoError(t, err)
	host, _ := os.Hostname()
	assert.Regexp(t, "^"+host+"_[0-9a-f-]{36}$", e.Identity(), "identity defaults to host name and a unique suffix")
}

// candidate runs an Elector in the background.
type candidate struct {
	id      string
	elector *leader.Elector
	leading chan context.Context
	cancel  context.CancelFunc
	done    chan error
}

func campaign(t *testing.T, ns, id string, mutate func(*leader.Options)) *candidate {
	t.Helper()
	opts := leader.Options{
		Config: cp.Config(), LeaseName: "test", Namespace: ns, Identity: id,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&opts)
	}
	e, err := leader.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{id: id, elector: e, leading: make(chan context.Context, 1), cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- e.Run(ctx, func(lctx context.Context) { c.leading <- lctx }) }()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

func holder(t *testing.T, ns string) string {
	t.Helper()
	l, err := kubernetes.NewForConfigOrDie(cp.Config()).CoordinationV1().Leases(ns).Get(t.Context(), "test", metav1.GetOptions{})
	require.NoError(t, err)
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestHandover(t *testing.T) {
	ns := controlplane.Namespace(t, cp)
	// The standby retries only every 10 s; only the Lease watch can make the
	// handover fast.
	slow := func(o *leader.Options) {
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = time.Minute, 30*time.Second, 10*time.Second
	}
	a := campaign(t, ns, "a", slow)
	aCtx := <-a.leading
	assert.Equal(t, "a", holder(t, ns))
	b := campaign(t, ns, "b", slow)

	select {
	case <-b.leading:
		t.Fatal("b leads while a holds the lease")
	default:
	}
	began := time.Now()
	a.cancel()
	require.NoError(t, <-a.done, "a graceful stop is no loss")
	a.done <- nil
	assert.Error(t, aCtx.Err(), "a's leadership context ends")
	bCtx := <-b.leading
	handover := time.Since(began)
	t.Logf("handover after release: %s (retry period 10s)", handover)
	assert.Less(t, handover, 10*time.Second, "b campaigned on the release, not on its retry tick")
	assert.Equal(t, "b", holder(t, ns))
	assert.NoError(t, bCtx.Err())
}

func TestKeepLease(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*leader.Options)
		keep   func(*candidate)
	}{
		{"KeepLeaseOnCancel", func(o *leader.Options) { o.KeepLeaseOnCancel = true }, func(*candidate) {}},
		{"KeepLease", nil, func(c *candidate) { c.elector.KeepLease() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := controlplane.Namespace(t, cp)
			a := campaign(t, ns, "a", tt.mutate)
			<-a.leading
			tt.keep(a)
			a.cancel()
			require.NoError(t, <-a.done)
			a.done <- nil
			assert.Equal(t, "a", holder(t, ns), "the lease is kept")
		})
	}
}

// TestTakeover plays a leader that renews the Lease and then dies without
// releasing it; the standby retries only every 10 s or more, so only its
// Lease watch can take over within the lease duration of the dead leader.
func TestTakeover(t *testing.T) {
	ns := controlplane.Namespace(t, cp)
	leases := kubernetes.NewForConfigOrDie(cp.Config()).CoordinationV1().Leases(ns)
	const ghostDuration = 2 * time.Second
	renew := func(l *coordinationv1.Lease) *coordinationv1.Lease {
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		l, err := leases.Update(t.Context(), l, metav1.UpdateOptions{})
		require.NoError(t, err)
		return l
	}
	now := metav1.NowMicro()
	ghost, err := leases.Create(t.Context(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "test"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("ghost"), LeaseDurationSeconds: ptr.To(int32(ghostDuration / time.Second)),
			AcquireTime: &now, RenewTime: &now, LeaseTransitions: ptr.To[int32](3),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	b := campaign(t, ns, "b", func(o *leader.Options) {
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = time.Minute, 30*time.Second, 10*time.Second
	})
	// While the ghost renews, its lease never expires.
	for range 10 {
		time.Sleep(ghostDuration / 4)
		ghost = renew(ghost)
	}
	select {
	case <-b.leading:
		t.Fatal("b leads while the ghost renews")
	default:
	}
	died := ghost.Spec.RenewTime.Time
	bCtx := <-b.leading
	takeover := time.Since(died)
	t.Logf("takeover %s after the last renewal (lease duration %s, retry period 10s)", takeover, ghostDuration)
	assert.GreaterOrEqual(t, takeover, ghostDuration, "not before the lease expired")
	assert.Less(t, takeover, ghostDuration+2*time.Second, "at expiry, not at a retry tick")
	assert.NoError(t, bCtx.Err())
	l, err := leases.Get(t.Context(), "test", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "b", *l.Spec.HolderIdentity)
	assert.Equal(t, int32(4), *l.Spec.LeaseTransitions)
	assert.Equal(t, int32(60), *l.Spec.LeaseDurationSeconds)
}

func TestLost(t *testing.T) {
	ns := controlplane.Namespace(t, cp)
	a := campaign(t, ns, "a", nil)
	lctx := <-a.leading
	require.NoError(t, cp.StopAPIServer())
	defer func() { require.NoError(t, cp.StartAPIServer(context.Background())) }()
	err := <-a.done
	a.done <- err
	assert.True(t, errors.Is(err, leader.ErrLost), "got %v", err)
	assert.ErrorContains(t, err, `leader election "test"`)
	assert.Error(t, lctx.Err(), "leadership context cancelled on loss")
}
