// Package leader elects one leader among engine replicas through a
// coordination.k8s.io Lease, using client-go's leaderelection.
//
// Guarantees:
//   - The lead callback runs only while this process holds the lease, and its
//     context is cancelled as soon as the lease is lost (renewal failed for
//     RenewDeadline) or Run's context is done.
//   - Run returns ErrLost when the lease was lost while Run's context was still
//     live; the caller should stop all work and exit, as controller-runtime does:
//     a fresh process rejoins as a standby with a clean state.
//   - When Run's context is done, a held lease is released, so a standby takes
//     over without waiting for the lease to expire, unless KeepLeaseOnCancel is
//     set or KeepLease was called: then standbys wait until it expires. The
//     caller stops its work before cancelling Run's context, and keeps the
//     lease when that work could not be stopped.
//   - A standby watches the Lease. When the leader releases it, the standby
//     campaigns at once instead of at its next RetryPeriod tick, so a graceful
//     handover takes one API round trip, not seconds.
//   - When a leader dies without releasing, a standby takes over the moment the
//     lease expires: the watch shows every renewal, and the lease expires its
//     leaseDurationSeconds after the standby last saw the record change, on the
//     standby's own clock (client-go's rule, safe against clock skew). The
//     takeover is an Update conditional on the resourceVersion that was
//     observed, so it fails if the holder renewed or another standby took the
//     lease meanwhile. A killed leader is thus replaced LeaseDuration (plus
//     the watch's latency and one API round trip) after its last renewal, which
//     is at most LeaseDuration after it died. If the watch cannot run,
//     client-go's retry ticks still take over, up to 2 × 2.2 × RetryPeriod
//     later.
//   - A leading attempt is never restarted by the watch.
package leader
