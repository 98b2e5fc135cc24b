package controller

import (
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/wre-dev/wre/host/reconcile"
)

// errorRuns collapses the log lines of a request that keeps failing with the
// same error, as every in-flight request does while the API server is down:
// the first failure is logged as an error, the identical ones after it only
// at V(1), and when the run ends (another error, or any other outcome) one
// line gives the count. Retries keep their backoff: only logging changes.
type errorRuns struct {
	mu   sync.Mutex
	runs map[reconcile.Request]*errorRun
}

// errorRun is the identical failures of one request so far.
type errorRun struct {
	msg     string
	repeats int       // failures after the first
	since   time.Time // the first failure
}

// failed records a retried failure of req and logs it.
func (e *errorRuns) failed(log logr.Logger, req reconcile.Request, err error, now time.Time) {
	msg := err.Error()
	e.mu.Lock()
	run := e.runs[req]
	repeat := run != nil && run.msg == msg
	if repeat {
		run.repeats++
	} else {
		if e.runs == nil {
			e.runs = map[reconcile.Request]*errorRun{}
		}
		e.runs[req] = &errorRun{msg: msg, since: now}
	}
	e.mu.Unlock()

	if repeat {
		log.V(1).Info("Reconciler error repeated", "error", msg, "repeats", run.repeats)
		return
	}
	run.summarize(log, now)
	log.Error(err, "Reconciler error")
}

// ended forgets req's run of failures, logging its count, when req has
// reconciled with another outcome.
func (e *errorRuns) ended(log logr.Logger, req reconcile.Request, now time.Time) {
	e.mu.Lock()
	run := e.runs[req]
	delete(e.runs, req)
	e.mu.Unlock()
	run.summarize(log, now)
}

// summarize logs how often the run's error repeated after its first line, if
// it did. It does nothing on a nil run.
func (r *errorRun) summarize(log logr.Logger, now time.Time) {
	if r == nil || r.repeats == 0 {
		return
	}
	log.Info("Reconciler error repeated while retrying", "error", r.msg, "repeats", r.repeats,
		"for", now.Sub(r.since).Round(time.Millisecond).String())
}
