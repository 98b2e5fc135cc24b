package leader_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
	c := &candidate{id: id, leading: make(chan context.Context, 1), cancel: cancel, done: make(chan error, 1)}
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

func TestKeepLeaseOnCancel(t *testing.T) {
	ns := controlplane.Namespace(t, cp)
	a := campaign(t, ns, "a", func(o *leader.Options) { o.KeepLeaseOnCancel = true })
	<-a.leading
	a.cancel()
	require.NoError(t, <-a.done)
	a.done <- nil
	assert.Equal(t, "a", holder(t, ns), "the lease is kept")
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
