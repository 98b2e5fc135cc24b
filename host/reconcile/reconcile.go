package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Request names the object to reconcile. Namespace is empty for cluster-scoped
// objects.
type Request struct {
	types.NamespacedName
}

// String returns "namespace/name", or "name" for cluster-scoped objects.
func (r Request) String() string {
	if r.Namespace == "" {
		return r.Name
	}
	return r.Namespace + "/" + r.Name
}

// Result tells the engine what to do after a successful reconcile.
type Result struct {
	// RequeueAfter, when positive, reconciles the same request again after this
	// delay. Zero means "wait for the next change".
	RequeueAfter time.Duration
}

// IsZero reports whether the result asks for nothing.
func (r Result) IsZero() bool { return r.RequeueAfter <= 0 }

// Reconciler brings the cluster towards the desired state of one object.
type Reconciler interface {
	Reconcile(ctx context.Context, req Request) (Result, error)
}

// Func adapts a function to the Reconciler interface.
type Func func(ctx context.Context, req Request) (Result, error)

// Reconcile calls f(ctx, req).
func (f Func) Reconcile(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

var _ Reconciler = Func(nil)

// terminalError marks an error that retrying cannot fix.
type terminalError struct{ err error }

func (e *terminalError) Error() string {
	if e.err == nil {
		return "terminal error"
	}
	return "terminal error: " + e.err.Error()
}

func (e *terminalError) Unwrap() error { return e.err }

// Is makes errors.Is(err, TerminalError(nil)) true for every terminal error.
func (e *terminalError) Is(target error) bool {
	_, ok := target.(*terminalError)
	return ok
}

// TerminalError wraps err so that the engine records it and does not retry the
// request. Detect it with errors.Is(err, reconcile.TerminalError(nil)).
func TerminalError(err error) error { return &terminalError{err: err} }

// IsTerminal reports whether err (or any error it wraps) is terminal.
func IsTerminal(err error) bool { return errors.Is(err, TerminalError(nil)) }

// PanicError is returned by the engine when a Reconciler panicked; Value is what
// was passed to panic and Stack the goroutine stack at that point.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("reconciler panicked: %v", e.Value) }
