package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/leaderelection"

	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logWatcher finds log lines in a growing log.
type logWatcher struct{ src fmt.Stringer }

func newLogWatcher(src fmt.Stringer) *logWatcher { return &logWatcher{src} }

// logLine is the part of a JSON log line the tests read.
type logLine struct {
	Time    time.Time `json:"time"`
	Msg     string    `json:"msg"`
	Address string    `json:"address"`
}

// find returns the first line whose message starts with msg.
func (l *logWatcher) find(msg string) (logLine, bool) {
	for _, raw := range strings.Split(l.src.String(), "\n") {
		var line logLine
		if json.Unmarshal([]byte(raw), &line) == nil && strings.HasPrefix(line.Msg, msg) {
			return line, true
		}
		if strings.Contains(raw, `msg="`+msg) { // text format
			return logLine{Msg: msg}, true
		}
	}
	return logLine{}, false
}

// waitFor waits until a line starting with msg is logged.
func (l *logWatcher) waitFor(t *testing.T, msg string) logLine {
	t.Helper()
	var line logLine
	require.Eventually(t, func() bool {
		var ok bool
		line, ok = l.find(msg)
		return ok
	}, 2*time.Minute, 5*time.Millisecond, "log line %q; log:\n%s", msg, l.src)
	return line
}

// engine is one `wre run` process.
type engine struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	*logWatcher
	exited chan struct{}
	err    error
}

func startEngine(t *testing.T, bin, name string, args ...string) *engine {
	t.Helper()
	e := &engine{name: name, log: &syncBuffer{}, exited: make(chan struct{})}
	e.logWatcher = newLogWatcher(e.log)
	e.cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	e.cmd.Stderr = e.log
	require.NoError(t, e.cmd.Start())
	go func() {
		e.err = e.cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		<-e.exited
		if t.Failed() {
			t.Logf("log of %s:\n%s", e.name, e.log)
		}
	})
	return e
}

// ready waits until the engine's /readyz passes: its caches have synced.
func (e *engine) ready(t *testing.T) {
	t.Helper()
	addr := e.waitFor(t, "Serving probes").Address
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 2*time.Minute, 5*time.Millisecond)
}

func buildWre(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wre")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

func waitWidget(t *testing.T, client dynamic.Interface, ns, name, want string) time.Time {
	t.Helper()
	require.Eventually(t, func() bool {
		u, err := client.Resource(statussync.GVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		got, _, _ := unstructured.NestedString(u.Object, "status", "current")
		return got == want
	}, 2*time.Minute, 5*time.Millisecond)
	return time.Now()
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
		stop func(t *testing.T, leader *engine) (stoppedAt time.Time)
		// bound is the longest acceptable time from stopping the leader to the
		// standby's workers starting.
		bound time.Duration
	}{
		{
			name: "kill_9",
			stop: func(t *testing.T, leader *engine) time.Time {
				at := time.Now()
				require.NoError(t, leader.cmd.Process.Kill())
				<-leader.exited
				return at
			},
			// client-go's standby sees a renewal up to one jittered retry late,
			// waits a lease duration from then, and acquires at its next
			// jittered retry: lease duration + 2 × (1 + JitterFactor) × retry.
			bound: leaseDuration + time.Duration(2*(1+leaderelection.JitterFactor)*float64(retryPeriod)),
		},
		{
			name: "sigterm",
			stop: func(t *testing.T, leader *engine) time.Time {
				at := time.Now()
				require.NoError(t, leader.cmd.Process.Signal(syscall.SIGTERM))
				<-leader.exited
				assert.NoError(t, leader.err, "graceful shutdown exits 0")
				leader.waitFor(t, "Workers stopped")
				return at
			},
			bound: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := controlplane.Namespace(t, cp)
			args := []string{
				"--kubeconfig", cp.KubeconfigPath(), "--native-demo",
				"--leader-elect", "--leader-election-namespace", ns, "--leader-election-id", "failover",
				"--lease-duration", leaseDuration.String(), "--renew-deadline", "3s", "--retry-period", retryPeriod.String(),
				"--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0",
			}
			a := startEngine(t, bin, "a", args...)
			aStarted := a.waitFor(t, "Starting workers")
			b := startEngine(t, bin, "b", args...)
			b.ready(t)

			_, err := client.Resource(statussync.GVR).Namespace(ns).Create(t.Context(), statussync.Widget(ns, "w1", "one"), metav1.CreateOptions{})
			require.NoError(t, err)
			waitWidget(t, client, ns, "w1", "one")
			_, standbyWorked := b.find("Starting workers")
			require.False(t, standbyWorked, "the standby runs no workers while the leader leads")

			stoppedAt := tt.stop(t, a)
			_, err = client.Resource(statussync.GVR).Namespace(ns).Create(t.Context(), statussync.Widget(ns, "w2", "two"), metav1.CreateOptions{})
			require.NoError(t, err)
			bStarted := b.waitFor(t, "Starting workers")
			convergedAt := waitWidget(t, client, ns, "w2", "two")

			// At no moment did both run workers: a's workers ran from aStarted
			// until it stopped (logged, or killed at stoppedAt); b's began after.
			aEnd := stoppedAt
			if line, ok := a.find("Workers stopped"); ok {
				aEnd = line.Time
			}
			assert.True(t, aStarted.Time.Before(aEnd))
			assert.True(t, bStarted.Time.After(aEnd), "b started workers at %s, a's ended at %s", bStarted.Time, aEnd)

			failover := bStarted.Time.Sub(stoppedAt)
			t.Logf("%s: standby workers started %s after the leader was stopped; new widget converged after %s (bound %s)",
				tt.name, failover, convergedAt.Sub(stoppedAt), tt.bound)
			assert.Less(t, failover, tt.bound)
		})
	}
}
