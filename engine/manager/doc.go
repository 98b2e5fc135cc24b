// Package manager runs the engine: the API server connection, the shared
// informers, the controllers, leader election, the probe and metrics servers,
// and shutdown.
//
// Guarantees:
//   - Controllers can be added and removed while the manager runs. Adding one
//     acquires the informers of its resources from the shared registry and
//     registers its event handlers; removing one stops its workers gracefully,
//     unregisters its handlers and releases the informers, so a resource that no
//     controller needs any more stops being watched.
//   - Every replica runs informers and fills its controllers' queues, so a
//     standby's caches are warm; only the leader runs workers. Workers of a
//     controller start once its informers have synced.
//   - Losing the lease cancels every in-flight reconcile and stops every worker
//     at once; Start then returns an error wrapping leader.ErrLost and the
//     process should exit non-zero (as controller-runtime does) so that it
//     restarts as a clean standby.
//   - Cancelling Start's context is a graceful shutdown: no new reconcile
//     starts, in-flight ones get GracefulShutdownTimeout to finish (then their
//     contexts are cancelled), the lease is released, informers and servers
//     stop, and Start returns nil. No goroutine of the manager outlives Start.
//   - The lease is released only once every worker has returned, so a standby
//     never runs workers while this process still reconciles. Reconciles that
//     ignore their cancellation (still running a second after the timeout) are
//     left behind, Start returns an error, and the lease is kept: standbys
//     take over when it expires, LeaseDuration after its last renewal, by which
//     time the process should have exited.
//   - /readyz passes when every acquired informer has synced and, on the leader,
//     every controller's workers run, and keeps passing while the API server is
//     unreachable (informers report that in their metrics and logs);
//     /healthz passes while the process serves HTTP. /metrics serves the
//     engine's metrics.Registry.
//   - With Options.SecureMetrics, every path of the metrics server (/metrics,
//     and what HandleMetricsPath adds) is served over TLS only, to callers the
//     API server authenticates and authorizes (package secure); the probes
//     stay plain HTTP.
package manager
