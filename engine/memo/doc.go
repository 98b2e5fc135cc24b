// Package memo skips the reconciles of a module whose inputs did not change
// (read-set memoization, docs/modules.md "Memoization").
//
// A Reconciler wraps a Recorder (a host.Module) and remembers, per request,
// the read set of its last reconcile when that reconcile may be the basis of
// a skip. Guarantees:
//   - A request is skipped, without entering the guest, only when its last
//     reconcile returned no error and no requeue, made no write, recorded no
//     event and read only through the cache, and every read of it (the
//     primary object, each get, found or not, and each list) gives the same
//     fingerprint from the cache now. Anything else runs the guest.
//   - A reconcile that wrote is never the basis of a skip: its read set is
//     dropped, so the next reconcile of the key runs, and only a run that
//     changes nothing is remembered. Nor is one of an object that is gone.
//   - A Reconciler serves one module version with one config; a new version
//     or config gets a new, empty Reconciler (engine/registry does so).
//   - At most Options.Size read sets are held; the least recently used is
//     evicted first, and an evicted request simply runs.
//   - Every skip counts wre_reconciles_skipped_total; a memoized request
//     that runs logs at V(1) which read changed.
package memo
