// Package wasmtest runs a built reconciler module through the real wre host
// against fixture objects, for module authors' tests. It is a testing.TB
// wrapper over host/fixture, which holds the logic and states the guarantees
// of the fake cluster.
//
// Guarantees:
//   - The module runs in the same host (sandbox, ABI, permissions, pool) as in
//     the engine; only the cluster is replaced: a client-go fake dynamic client
//     holds the fixture objects, and an in-memory cache over the same objects
//     serves cached reads as typed objects for built-in kinds, as informers do.
//   - Everything a Harness creates is closed by t.Cleanup; New fails the test
//     on any error.
//   - Build compiles a guest package once per test binary run.
//
// The fake client does not implement admission, field ownership of
// server-side apply or garbage collection; test those against the local
// control plane.
package wasmtest
