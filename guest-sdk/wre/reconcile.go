package wre

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Request names the object to reconcile; Namespace is empty for cluster-scoped
// objects.
type Request struct {
	types.NamespacedName
}

// Result tells the host what to do after a successful reconcile.
type Result struct {
	// RequeueAfter, when positive, reconciles the same object again after this
	// delay. Zero means "wait for the next change".
	RequeueAfter time.Duration
}

// Reconciler brings the cluster towards the desired state of one object.
type Reconciler interface {
	Reconcile(ctx context.Context, req Request) (Result, error)
}

// Func adapts a function to the Reconciler interface.
type Func func(ctx context.Context, req Request) (Result, error)

// Reconcile calls f(ctx, req).
func (f Func) Reconcile(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

var _ Reconciler = Func(nil)

// terminal marks an error that retrying cannot fix.
type terminal struct{ err error }

func (e *terminal) Error() string {
	if e.err == nil {
		return "terminal error"
	}
	return "terminal error: " + e.err.Error()
}

func (e *terminal) Unwrap() error { return e.err }

// Is makes errors.Is(err, TerminalError(nil)) true for every terminal error.
func (e *terminal) Is(target error) bool {
	_, ok := target.(*terminal)
	return ok
}

// TerminalError wraps err so that the host records the failure and does not
// retry it. Detect it with errors.Is(err, wre.TerminalError(nil)).
func TerminalError(err error) error { return &terminal{err: err} }

// IsTerminal reports whether err (or an error it wraps) is terminal.
func IsTerminal(err error) bool { return errors.Is(err, TerminalError(nil)) }

type reconcileIDKey struct{}

// ReconcileID returns the ID the host gave the reconcile ctx belongs to, the
// one it tags log lines and metrics with; "" outside a reconcile.
func ReconcileID(ctx context.Context) string {
	id, _ := ctx.Value(reconcileIDKey{}).(string)
	return id
}
