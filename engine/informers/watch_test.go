package informers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/wre-dev/wre/engine/logging"
)

// logLines is an engine logger (JSON) writing into memory.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the logged lines as level and message.
func (l *logLines) lines(t *testing.T) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		out = append(out, m["level"].(string)+" "+m["msg"].(string))
	}
	return out
}

func newHealth(t *testing.T, verbosity int) (*watchHealth, *clocktesting.FakeClock, *logLines) {
	t.Helper()
	logs := &logLines{}
	logger, err := logging.New(logging.Options{Writer: logs, Verbosity: verbosity})
	require.NoError(t, err)
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	return newWatchHealth(clk, logger), clk, logs
}

func TestWatchHealth(t *testing.T) {
	h, clk, logs := newHealth(t, 0)
	connected, down := h.state()
	assert.False(t, connected, "not connected before the first list")
	assert.Zero(t, down)
	clk.Step(2 * time.Second)
	_, down = h.state()
	assert.Equal(t, 2*time.Second, down, "the informer's age until its first success")

	h.succeeded()
	connected, down = h.state()
	assert.True(t, connected)
	assert.Zero(t, down)

	clk.Step(time.Minute) // a long healthy watch
	for range 5 {
		h.failed(syscall.ECONNREFUSED)
		clk.Step(3 * time.Second)
	}
	connected, down = h.state()
	assert.False(t, connected)
	assert.Equal(t, 15*time.Second, down, "counted from the first failure, not from the last success")

	h.succeeded()
	h.succeeded()
	connected, _ = h.state()
	assert.True(t, connected)
	assert.Equal(t, []string{"WARN Watch failed; retrying until the API server answers", "INFO Watch re-established"}, logs.lines(t),
		"one warning per outage and one line when it is back")
	assert.Contains(t, logs.buf.String(), `"downtime":"15s"`)
}

func TestWatchHealthFailingFromTheStart(t *testing.T) {
	h, clk, logs := newHealth(t, 2)
	h.failed(errors.New("forbidden"))
	clk.Step(time.Second)
	h.failed(errors.New("forbidden"))
	h.succeeded()
	assert.Equal(t, []string{"WARN Watch failed; retrying until the API server answers", "DEBUG+2 Watch retry failed", "INFO Watch re-established"}, logs.lines(t),
		"retries are logged at V(2)")
	assert.Contains(t, logs.buf.String(), `"downtime":"1s"`, "counted from the start")
}

// scripted is a RoundTripper that answers from a script, one entry per
// request: an error, or a status code with optional headers.
type scripted struct {
	mu    sync.Mutex
	steps []step
	calls int
}

type step struct {
	err    error
	code   int
	header http.Header
}

func (s *scripted) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.steps[min(s.calls, len(s.steps)-1)]
	s.calls++
	if st.err != nil {
		return nil, st.err
	}
	h := st.header
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: st.code, Status: http.StatusText(st.code), Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func TestWatchTransport(t *testing.T) {
	refused := step{err: &netOpError{syscall.ECONNREFUSED}}
	tests := []struct {
		name  string
		steps []step
		// waits are the delays the transport sleeps between attempts.
		waits     []time.Duration
		code      int
		connected bool
	}{
		{name: "success", steps: []step{{code: 200}}, code: 200, connected: true},
		{name: "refused, then success", steps: []step{refused, refused, refused, refused, refused, {code: 200}},
			waits: []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}, code: 200, connected: true},
		{name: "unavailable honours Retry-After up to the cap", steps: []step{
			{code: 503, header: http.Header{"Retry-After": {"1"}}}, {code: 429}, {code: 503, header: http.Header{"Retry-After": {"5"}}}, {code: 200}},
			waits: []time.Duration{time.Second, 500 * time.Millisecond, 2 * time.Second}, code: 200, connected: true},
		{name: "forbidden goes to the reflector", steps: []step{{code: 403}}, code: 403},
		{name: "gone goes to the reflector and says nothing about the connection", steps: []step{{code: 410}}, code: 410},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, clk, _ := newHealth(t, 0)
			base := &scripted{steps: tt.steps}
			// No jitter, so that the waits are exact.
			tr := &watchTransport{base: base, health: h, clock: clk,
				backoff: wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Steps: 4, Cap: 2 * time.Second}}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://api/api/v1/configmaps?watch=true", nil)
			require.NoError(t, err)

			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := tr.RoundTrip(req)
				done <- result{resp, err}
			}()
			for i, w := range tt.waits {
				require.Eventually(t, func() bool { return clk.HasWaiters() }, waitFor, tick, "wait %d", i)
				clk.Step(w - time.Nanosecond)
				assert.True(t, clk.HasWaiters(), "wait %d lasts %s", i, w)
				clk.Step(time.Nanosecond)
			}
			res := <-done
			require.NoError(t, res.err)
			assert.Equal(t, tt.code, res.resp.StatusCode)
			assert.Equal(t, len(tt.waits)+1, base.count(), "attempts")
			connected, _ := h.state()
			assert.Equal(t, tt.connected, connected)
		})
	}
}

func TestWatchTransportStopsWithTheRequest(t *testing.T) {
	h, clk, _ := newHealth(t, 0)
	for _, st := range []step{{err: &netOpError{syscall.ECONNREFUSED}}, {code: 503}} {
		base := &scripted{steps: []step{st}}
		tr := &watchTransport{base: base, health: h, clock: clk, backoff: DefaultReconnectBackoff}
		ctx, cancel := context.WithCancel(t.Context())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api/api/v1/configmaps", nil)
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := tr.RoundTrip(req)
			done <- err
		}()
		require.Eventually(t, func() bool { return clk.HasWaiters() }, waitFor, tick)
		cancel()
		assert.Error(t, <-done)
		assert.Equal(t, 1, base.count())
	}

	// A request cancelled by its caller is no failure of the connection.
	h.succeeded()
	tr := &watchTransport{base: &scripted{steps: []step{{err: context.Canceled}}}, health: h, clock: clk, backoff: DefaultReconnectBackoff}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://api/api/v1/configmaps", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	assert.ErrorIs(t, err, context.Canceled)
	connected, _ := h.state()
	assert.True(t, connected)
}

// netOpError wraps an errno as a dial error does.
type netOpError struct{ errno syscall.Errno }

func (e *netOpError) Error() string { return "dial tcp 127.0.0.1:6443: " + e.errno.Error() }
func (e *netOpError) Unwrap() error { return e.errno }

func TestRetryAfter(t *testing.T) {
	for header, want := range map[string]time.Duration{"": 0, "2": 2 * time.Second, "-1": 0, "soon": 0} {
		resp := &http.Response{Header: http.Header{}}
		if header != "" {
			resp.Header.Set("Retry-After", header)
		}
		assert.Equal(t, want, retryAfter(resp), header)
	}
}
