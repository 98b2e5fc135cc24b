// Package wre turns a Go package into a wre reconciler module.
//
// A module registers itself once, from an init function:
//
//	func init() { wre.Register(wre.Module{Scheme: scheme, Setup: setup}) }
//
// and is built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o module.wasm .
//
// The package provides the exports the host looks for (the wre_abi_v1 marker,
// wre_alloc, wre_free and wre_reconcile) and talks to the host through the wre
// imports; docs/abi.md specifies both. Under plain `go test` the same Module runs
// against the in-memory host of package sdktest.
//
// Guarantees:
//   - Setup runs once per instance, on the first reconcile, so it may call the
//     host (read the config, for example). If it fails, every reconcile of that
//     instance fails with its error.
//   - Reconcile is never called concurrently within one instance; the host runs
//     several instances for concurrency.
//   - An error wins over a Result: the response carries either RequeueAfter or
//     the error, never both. TerminalError marks an error the host must not retry.
//   - A panic in Setup or Reconcile is recovered and reported to the host as a
//     panic (docs/abi.md §3.3, ReconcileResponse tag 4) with its value and
//     stack: the reconcile fails and is retried with backoff, and the host
//     discards the instance, counts wre_guest_traps_total{reason="panic"} and
//     records a ReconcileTrapped event, as for a trap.
//   - Buffers handed to the host come from wre_alloc and stay alive until the
//     host calls wre_free; buffers the host hands over are released after use.
package wre
