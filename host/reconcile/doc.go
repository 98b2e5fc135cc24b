// Package reconcile defines the contract between the engine and the code that
// reconciles objects, whether a native Go function or a wasm module.
//
// Guarantees:
//   - A Reconciler is called with one Request at a time per key; the engine never
//     reconciles the same key on two workers at once.
//   - An error wins over a Result: a non-nil error is retried with rate-limited
//     backoff unless it wraps TerminalError, in which case it is not retried.
//   - Result.RequeueAfter > 0 schedules the same key again after that delay.
//
// Where it sits: at the bottom of the data flow, below both the engine (whose
// controllers call Reconcilers) and the host (whose wasm modules are
// Reconcilers), so that the host imports nothing under engine/.
package reconcile
