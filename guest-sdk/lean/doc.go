// Package lean is the Go SDK for ABI v2 modules (docs/sdk.md, docs/abi.md
// §10): no runtime.Scheme, no reflection, no encoding/json and no heap
// allocation on the hot path of a reconcile.
//
// Authors describe what they read as ordinary Go structs whose fields carry
// `wre:"path"` tags; `wre build` (package leangen) generates their codecs and
// projections. The host sends only those fields, in a flat record, inside the
// one guest call of a reconcile.
//
// Guarantees:
//   - A reconcile enters the guest once. Reading the primary object needs no
//     host call; it arrives with the request.
//   - Strings and maps of decoded objects are views of memory the host
//     wrote: valid until the reconcile returns. Clone them (strings.Clone) to
//     keep them longer.
//   - Writes are server-side applies of the declared fields, owned by the
//     module (its name is the field manager).
//   - A panic in the reconciler fails that reconcile, flagged so the host
//     discards the instance.
package lean
