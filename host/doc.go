// Package host runs wre reconciler modules: WebAssembly guests that speak the
// ABI specified in docs/abi.md, executed by wazero in a sandbox.
//
// A Runtime compiles modules (once per digest, with an optional on-disk
// compilation cache) and validates their ABI marker, exports and imports. A
// Module made from compiled code implements reconcile.Reconciler with a pool
// of instances.
//
// Guarantees:
//   - Sandbox: no filesystem, sockets or environment; guest stdout/stderr become
//     log lines tagged with the module and reconcile ID; linear memory is capped
//     per instance; a per-reconcile timeout stops even a guest spinning in a
//     loop, unless RuntimeOptions.TrustedGuests turns wazero's loop checks off
//     (then the reconcile still ends at its timeout, the guest is aborted at
//     its next host call, and an instance still running is abandoned and
//     counted by Runtime.Runaways until it returns).
//   - Guest log output (wre.log and stdout/stderr lines together) is bounded
//     per reconcile, and per _initialize, by ModuleOptions.MaxLogLines and
//     MaxLogBytes: the excess is dropped, one line starting with
//     LogDroppedMarker reports its count when the call ends, and
//     wre_module_log_dropped_lines_total and _bytes_total count it.
//   - An _initialize that does not return within ModuleOptions.InitTimeout
//     fails with an error naming _initialize and the timeout.
//   - No host call is served after its reconcile's context ended: the guest
//     is aborted at that call with the timeout (or cancellation) error.
//   - Isolation of failures: a trap, panic, timeout, exhausted memory or ABI
//     violation fails only that reconcile with an error naming the reason (the
//     engine's backoff applies), discards the instance, counts
//     wre_guest_traps_total and records a Warning event on the object. The
//     reason comes from the failing call's own state only: what an earlier
//     reconcile of the instance did (a refused grow it survived, a panic line
//     it printed) does not label it.
//   - Host calls never panic the host on guest input: bad pointers and lengths,
//     oversized or malformed messages and unknown ops become error statuses.
//   - Every host call is checked against the module's Permissions, cache reads
//     included; Secrets need a grant that names them.
//   - Instances are created lazily up to the module's concurrency and replaced
//     after a trap and after MaxReconcilesPerInstance reconciles. An instance
//     unused for IdleTimeout is closed (within two IdleTimeouts, without a
//     reconcile), so an idle module holds no instance; eviction never closes
//     an instance a reconcile has acquired.
//   - Module.ReconcileReads returns the read set of a reconcile: the primary
//     object and every get and list, each fingerprinted as the guest
//     received it (ABI v2: a hash of the projected fields, resourceVersion
//     aside; whole objects: the resourceVersion). A write, an event, a live
//     or paged read or a failed call makes it not Reusable. Module.Changed
//     recomputes every fingerprint from the cache with the same encoder and
//     returns "" only when none changed.
//   - Close methods are idempotent and close everything their value created.
//
// host/wasmtest runs a built module through this host against fixture objects.
// RATIONALE.md records the design choices and their measurements.
package host
