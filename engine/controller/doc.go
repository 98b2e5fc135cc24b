// Package controller runs one Reconciler: a priority work queue of
// reconcile.Requests fed by event handlers, and a pool of workers that drain it.
//
// Guarantees:
//   - A request is never reconciled by two workers at once, and a request added
//     while it is being reconciled is reconciled again afterwards (the queue's
//     guarantees).
//   - Each reconcile ends in exactly one of: error (requeued with rate-limited
//     backoff), terminal error (forgotten, not retried), RequeueAfter (forgotten,
//     then added again after the delay) or success (forgotten); each outcome
//     counts one controller_runtime_reconcile_total label.
//   - A panicking Reconciler fails only that reconcile: the panic becomes a
//     *reconcile.PanicError, is counted, and the request is retried with backoff.
//   - Each reconcile runs under a context that is cancelled after
//     Options.ReconcileTimeout; a reconcile still running then is counted as a
//     timeout.
//   - The context passed to the Reconciler carries a logger (logr.FromContext)
//     with controller, reconcileID, namespace and name, so every line it logs
//     names the reconcile; the reconcile ID is fresh for every attempt.
//   - A request that keeps failing with the same error logs it once as an
//     error; the identical failures after it are logged at V(1) only, and one
//     line counts them when the run ends (another error or outcome). The
//     retries keep their rate-limited backoff.
//   - The queue exists from New on, so event handlers can fill it before the
//     workers start (a standby keeps its queue warm). Workers run only between
//     Start and Stop: cancelling Start's context stops them at once and cancels
//     in-flight reconciles (lost leadership); Stop stops handing out work and
//     lets in-flight reconciles finish (graceful shutdown). A Controller runs at
//     most once.
package controller
