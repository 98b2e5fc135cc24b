package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/dynamic"

	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// syncBuffer holds the log of an engine run in process.
type syncBuffer = enginetest.SyncBuffer

// logWatcher adapts enginetest.LogWatcher to tests: waitFor fails the test.
type logWatcher struct{ *enginetest.LogWatcher }

func newLogWatcher(src fmt.Stringer) logWatcher {
	return logWatcher{enginetest.NewLogWatcher(src)}
}

// waitFor waits up to 2 minutes until a line starting with msg is logged.
func (l logWatcher) waitFor(t *testing.T, msg string) enginetest.LogLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	line, err := l.WaitFor(ctx, msg)
	require.NoError(t, err)
	return line
}

func buildWre(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wre")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

func TestLeaderFailover(t *testing.T) {
	bin := buildWre(t)
	require.NoError(t, enginetest.InstallWidgetCRD(t.Context(), cp.Config()))
	client, err := dynamic.NewForConfig(cp.Config())
	require.NoError(t, err)
	const (
		leaseDuration = 4 * time.Second
		retryPeriod   = time.Second
	)

	tests := []struct {
		name string
		stop func(leader *enginetest.Engine)
		// exitOK says whether the leader must exit 0.
		exitOK bool
		// bound is the longest acceptable time from stopping the leader to
		// the standby's workers starting and to its reconcile of an object
		// created after the stop.
		bound time.Duration
	}{
		{
			name: "kill_9",
			stop: func(leader *enginetest.Engine) { leader.Kill() },
			// The leader renewed at most a retry period before it died; the
			// standby's Lease watch takes over when the lease expires, a
			// lease duration after that renewal (issue 3's bound).
			bound: leaseDuration + retryPeriod,
		},
		{
			name:   "sigterm",
			stop:   func(leader *enginetest.Engine) { _ = leader.Cmd.Process.Signal(syscall.SIGTERM) },
			exitOK: true,
			bound:  2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := enginetest.Failover{
				Bin: bin, Kubeconfig: cp.KubeconfigPath(), Client: client,
				Namespace: controlplane.Namespace(t, cp), ID: "failover",
				LeaseDuration: leaseDuration, RenewDeadline: 3 * time.Second, RetryPeriod: retryPeriod,
			}
			res, err := f.Run(t.Context(), tt.stop)
			require.NoError(t, err, "log of the leader:\n%s\nlog of the standby:\n%s", res.LeaderLog, res.StandbyLog)
			require.False(t, res.StandbyWorkedEarly, "the standby runs no workers while the leader leads")
			if tt.exitOK {
				assert.NoError(t, res.LeaderErr, "graceful shutdown exits 0")
				assert.Contains(t, res.LeaderLog, "Workers stopped")
			}
			// At no moment did both run workers: the leader's ran from
			// LeaderStarted until it stopped (logged, or killed at Stopped);
			// the standby's began after.
			assert.True(t, res.LeaderStarted.Before(res.LeaderEnded))
			assert.True(t, res.StandbyStarted.After(res.LeaderEnded), "standby started workers at %s, the leader's ended at %s", res.StandbyStarted, res.LeaderEnded)
			t.Logf("%s: standby workers started %s after the leader was stopped; new widget reconciled after %s (bound %s)",
				tt.name, res.Takeover(), res.Reconciled(), tt.bound)
			assert.Less(t, res.Takeover(), tt.bound)
			assert.Less(t, res.Reconciled(), tt.bound, "the standby reconciles in time")
		})
	}
}
