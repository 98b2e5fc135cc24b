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
//   - When Run's context is done, a held lease is released (unless
//     KeepLeaseOnCancel), so a standby takes over without waiting for the lease
//     to expire. The caller stops its work before cancelling Run's context.
//   - A standby watches the Lease: when the leader releases it, the standby
//     campaigns at once instead of at its next RetryPeriod tick, so a graceful
//     handover takes one API round trip, not seconds. When a leader dies without
//     releasing, a standby takes over after LeaseDuration (plus at most one
//     RetryPeriod with jitter), the usual client-go behaviour.
package leader
