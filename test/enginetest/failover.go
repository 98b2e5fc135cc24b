package enginetest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/wre-dev/wre/engine/native/statussync"
)

// WaitWidget polls every 5 ms until Widget namespace/name has status.current
// == want and returns when it saw that, or fails when ctx ends.
func WaitWidget(ctx context.Context, client dynamic.Interface, namespace, name, want string) (time.Time, error) {
	err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		u, err := client.Resource(statussync.GVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not created or not visible yet: keep polling
		}
		got, _, _ := unstructured.NestedString(u.Object, "status", "current")
		return got == want, nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("widget %s/%s never got status.current %q: %w", namespace, name, want, err)
	}
	return time.Now(), nil
}

// Failover describes one leader failover of two `wre run --native-demo`
// replicas: a leader "a" and a standby "b" that elect through a Lease, the
// leader stopped by a function of the caller, then a new Widget that only the
// standby can reconcile. The Widget CRD must be installed.
type Failover struct {
	// Bin is the wre binary.
	Bin string
	// Kubeconfig is the engines' kubeconfig.
	Kubeconfig string
	// Client creates and reads the Widgets.
	Client dynamic.Interface
	// Namespace holds the Lease and the Widgets.
	Namespace string
	// ID names the Lease and prefixes the Widgets, so that several failovers
	// can share a namespace.
	ID string
	// LeaseDuration, RenewDeadline and RetryPeriod are the engines' lease
	// settings (--lease-duration, --renew-deadline, --retry-period).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Timeout bounds each wait. Defaults to 2 minutes.
	Timeout time.Duration
}

// FailoverResult is what one failover observed. Times of engine events are
// the engines' own log timestamps; the others are taken by the caller's clock
// on the same machine.
type FailoverResult struct {
	// LeaderStarted is when the leader's workers started.
	LeaderStarted time.Time
	// StandbyWorkedEarly reports that the standby started workers while the
	// leader still led (it must not).
	StandbyWorkedEarly bool
	// Stopped is when the leader was signalled.
	Stopped time.Time
	// LeaderEnded is when the leader logged "Workers stopped", or Stopped if
	// it never did (killed).
	LeaderEnded time.Time
	// LeaderErr is the leader's exit error (nil: exit code 0).
	LeaderErr error
	// StandbyStarted is when the standby's workers started.
	StandbyStarted time.Time
	// Converged is when the Widget created after the stop was seen reconciled.
	Converged time.Time
	// LeaderLog and StandbyLog are the engines' logs, for failure messages.
	LeaderLog, StandbyLog string
}

// Takeover is the time from stopping the leader to the standby's workers
// starting: what the lease settings bound.
func (r FailoverResult) Takeover() time.Duration { return r.StandbyStarted.Sub(r.Stopped) }

// Reconciled is the time from stopping the leader to the standby having
// reconciled an object created after the stop.
func (r FailoverResult) Reconciled() time.Duration { return r.Converged.Sub(r.Stopped) }

// Run starts the leader, waits until it reconciles a Widget, starts the
// standby and waits until its caches have synced, then calls stop with the
// leader (stop returns once the leader has exited), creates a second Widget
// and waits until the standby leads and has reconciled it. Both engines are
// stopped when Run returns.
func (f Failover) Run(ctx context.Context, stop func(leader *Engine)) (res FailoverResult, err error) {
	if f.Timeout <= 0 {
		f.Timeout = 2 * time.Minute
	}
	args := []string{
		"--kubeconfig", f.Kubeconfig, "--native-demo", "--log-format", "json",
		"--leader-elect", "--leader-election-namespace", f.Namespace, "--leader-election-id", f.ID,
		"--lease-duration", f.LeaseDuration.String(), "--renew-deadline", f.RenewDeadline.String(), "--retry-period", f.RetryPeriod.String(),
		"--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0",
	}
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	a, err := StartEngine(f.Bin, "leader", args...)
	if err != nil {
		return res, err
	}
	defer func() {
		res.LeaderLog = a.Log()
		err = errors.Join(err, ignoreExit(a.Stop(30*time.Second)))
	}()
	started, err := a.WaitFor(ctx, "Starting workers")
	if err != nil {
		return res, err
	}
	res.LeaderStarted = started.Time
	b, err := StartEngine(f.Bin, "standby", args...)
	if err != nil {
		return res, err
	}
	defer func() {
		res.StandbyLog = b.Log()
		err = errors.Join(err, b.Stop(30*time.Second))
	}()
	if err := b.Ready(ctx); err != nil {
		return res, err
	}
	widgets := f.Client.Resource(statussync.GVR).Namespace(f.Namespace)
	before, after := f.ID+"-before", f.ID+"-after"
	if _, err := widgets.Create(ctx, statussync.Widget(f.Namespace, before, "one"), metav1.CreateOptions{}); err != nil {
		return res, err
	}
	if _, err := WaitWidget(ctx, f.Client, f.Namespace, before, "one"); err != nil {
		return res, err
	}
	_, res.StandbyWorkedEarly = b.Find("Starting workers")

	res.Stopped = time.Now()
	stop(a)
	<-a.Exited()
	res.LeaderErr = a.Err()
	res.LeaderEnded = res.Stopped
	if line, ok := a.Find("Workers stopped"); ok {
		res.LeaderEnded = line.Time
	}
	if _, err := widgets.Create(ctx, statussync.Widget(f.Namespace, after, "two"), metav1.CreateOptions{}); err != nil {
		return res, err
	}
	line, err := b.WaitFor(ctx, "Starting workers")
	if err != nil {
		return res, err
	}
	res.StandbyStarted = line.Time
	res.Converged, err = WaitWidget(ctx, f.Client, f.Namespace, after, "two")
	return res, err
}

// ignoreExit drops the error of an engine that had already exited: the
// failover stopped it on purpose, and FailoverResult.LeaderErr reports how.
func ignoreExit(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil
	}
	return err
}
