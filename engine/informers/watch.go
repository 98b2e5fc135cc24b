package informers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/wre-dev/wre/engine/logging"
)

// DefaultReconnectBackoff is Options.ReconnectBackoff's default: the first
// retry after 200 ms, doubling to a cap of 1 s, each wait stretched by up to
// half (jitter 0.5), so a retry comes at most 1.5 s after the previous one.
// See docs/operations.md (API server outages) for why.
var DefaultReconnectBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 4, Cap: time.Second}

// watchHealth is what one informer knows about its connection to the API
// server: whether its last list or watch request succeeded, and since when it
// has not. It logs one warning when the connection is lost and one info line
// with the downtime when it is back, however many retries happen between. It
// is safe for concurrent use.
type watchHealth struct {
	clock  clock.PassiveClock
	logger logr.Logger

	mu        sync.Mutex
	connected bool
	lastGood  time.Time // last success, or the start: the beginning of a failure
	failing   bool      // a failure was logged and no success since
}

func newWatchHealth(c clock.PassiveClock, logger logr.Logger) *watchHealth {
	return &watchHealth{clock: c, logger: logger, lastGood: c.Now()}
}

// succeeded records a successful list or watch request.
func (h *watchHealth) succeeded() {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	if h.failing {
		h.logger.Info("Watch re-established", "downtime", now.Sub(h.lastGood).Round(time.Millisecond).String())
	}
	h.connected, h.failing, h.lastGood = true, false, now
}

// failed records a failed list or watch request; only the first failure after
// a success (or the start) is logged at the default level.
func (h *watchHealth) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.connected {
		// The connection was good until now: the outage starts here.
		h.lastGood = h.clock.Now()
	}
	if !h.failing {
		logging.Warn(h.logger, "Watch failed; retrying until the API server answers", "error", err.Error())
	} else {
		h.logger.V(2).Info("Watch retry failed", "error", err.Error())
	}
	h.connected, h.failing = false, true
}

// state returns whether the watch is connected and the seconds since its last
// successful list or watch (0 while connected).
func (h *watchHealth) state() (connected bool, down time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.connected {
		return true, 0
	}
	return false, h.clock.Since(h.lastGood)
}

// watchTransport carries the list and watch requests of one informer. It
// records their outcome in health and retries those that did not reach a
// working API server (no connection, 429, 500, 502, 503, 504) itself, with
// backoff, instead of handing the failure to the informer's reflector: the
// reflector's own backoff (0.8 s doubling to 30 s, jitter 1.0, reset only
// after 2 min) cannot be configured through a shared informer in client-go
// v0.37 and leaves a watch blind for up to a minute after an outage. Every
// request starts with a fresh backoff, so success resets it. A Retry-After
// header lengthens a wait up to the backoff's cap, no further: a starting
// API server answers 503 with Retry-After 5 moments before it is ready.
type watchTransport struct {
	base    http.RoundTripper
	health  *watchHealth
	backoff wait.Backoff
	clock   clock.Clock
}

// RoundTrip implements http.RoundTripper. Informers send only GET requests,
// which carry no body and may be sent again.
func (t *watchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	delay := t.backoff.DelayFunc()
	for {
		resp, err := t.base.RoundTrip(req)
		wait, retry := t.classify(req, resp, err)
		if !retry || req.Method != http.MethodGet {
			return resp, err
		}
		if resp != nil {
			// Drain so the connection can be reused.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		timer := t.clock.NewTimer(max(delay(), min(wait, t.backoff.Cap)))
		select {
		case <-req.Context().Done():
			timer.Stop()
			if resp != nil {
				return nil, fmt.Errorf("%s: %w", resp.Status, context.Cause(req.Context()))
			}
			return nil, err
		case <-timer.C():
		}
	}
}

// classify records the outcome of one attempt and tells whether to try again,
// and how long the server asked to wait (Retry-After).
func (t *watchTransport) classify(req *http.Request, resp *http.Response, err error) (time.Duration, bool) {
	switch {
	case err != nil:
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return 0, false // the informer stops or the request timed out on purpose
		}
		t.health.failed(err)
		return 0, true
	case resp.StatusCode < 300:
		t.health.succeeded()
		return 0, false
	case resp.StatusCode == http.StatusGone:
		// An expired resource version: the server answers, the reflector relists.
		return 0, false
	}
	t.health.failed(fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return retryAfter(resp), true
	}
	return 0, false // 401, 403, 404 …: the reflector reports them and backs off
}

// retryAfter returns the wait of a Retry-After header in seconds, or 0.
func retryAfter(resp *http.Response) time.Duration {
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
