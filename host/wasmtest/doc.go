// Package wasmtest runs a built reconciler module through the real wre host
// against fixture objects, for module authors' tests.
//
// Guarantees:
//   - The module runs in the same host (sandbox, ABI, permissions, pool) as in
//     the engine; only the cluster is replaced: a client-go fake dynamic client
//     holds the fixture objects, and an in-memory cache over the same objects
//     serves cached reads as typed objects for built-in kinds, as informers do.
//   - Everything a Harness creates is closed by t.Cleanup.
//   - Build compiles a guest package once per test binary run.
//
// The fake client does not implement server-side apply merging, admission or
// garbage collection; test those against the local control plane.
package wasmtest
