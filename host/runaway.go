package host

import (
	"context"
	"errors"
	"time"

	"github.com/tetratelabs/wazero/sys"
)

// guestResult is what a guest call on a goroutine of its own hands back.
type guestResult[T any] struct {
	val T
	err error
}

// callGuest runs fn, which calls into inst's guest code under ctx.
//
// With loop checks wazero itself stops the guest when ctx ends, so fn runs on
// the caller's goroutine. Without them (TrustedGuests) fn runs on a goroutine
// of its own, and callGuest returns as soon as ctx ends, with the error wazero
// would have returned; inst is then abandoned: it counts as a runaway until fn
// returns, and drop closes it only then, because its memory and code are in
// use until that moment.
func callGuest[T any](m *Module, ctx context.Context, inst *instance, fn func() (T, error)) (T, error) {
	if !m.rt.opts.TrustedGuests {
		return fn()
	}
	done := make(chan guestResult[T], 1)
	go func() {
		v, err := fn()
		done <- guestResult[T]{v, err}
	}()
	select {
	case r := <-done:
		return r.val, r.err
	case <-ctx.Done():
	}
	select {
	case r := <-done: // returned at the same moment: not a runaway
		return r.val, r.err
	default:
	}
	inst.abandoned = func() error { return (<-done).err }
	inst.abandonedAt = time.Now()
	m.rt.runaways.Add(1)
	m.rt.opts.Metrics.Runaways.WithLabelValues(m.opts.Name).Inc()
	log := m.log
	if st := stateOf(ctx); st != nil {
		log = st.logger()
	}
	log.Error(ctx.Err(), "Guest code still runs after its context ended; instance abandoned. Loop checks are off (trusted guests): it runs until it returns or calls the host, and the engine reports unhealthy meanwhile")
	var zero T
	return zero, sys.NewExitError(exitCodeOf(ctx))
}

// awaitRunaway waits for the guest code of an abandoned instance to return and
// stops counting it as a runaway.
func (m *Module) awaitRunaway(inst *instance) {
	err := inst.abandoned()
	inst.abandoned = nil
	m.rt.runaways.Add(-1)
	m.rt.opts.Metrics.Runaways.WithLabelValues(m.opts.Name).Dec()
	m.log.Info("Abandoned instance returned from guest code; closing it", "after", time.Since(inst.abandonedAt).String(), "result", errString(err))
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return firstLine(err.Error())
}

// exitCodeOf is the exit code wazero closes a module with when ctx ends.
func exitCodeOf(ctx context.Context) uint32 {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return sys.ExitCodeDeadlineExceeded
	}
	return sys.ExitCodeContextCanceled
}

// abortIfDone ends the running guest call when its context has ended, as
// wazero does at a loop check; host functions call it so that no host call is
// served for a reconcile that is over, and so that a trusted guest (whose
// loops are not checked) stops at its next host call.
func abortIfDone(ctx context.Context) {
	if ctx.Err() != nil {
		panic(sys.NewExitError(exitCodeOf(ctx)))
	}
}
