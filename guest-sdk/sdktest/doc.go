// Package sdktest runs a wre module under plain `go test`, against an in-memory
// host, so that reconcile logic is unit-tested in milliseconds without a cluster
// or a wasm build.
//
//	env := sdktest.New(t, module, sdktest.WithObjects(widget))
//	res, err := env.Reconcile(client.ObjectKeyFromObject(widget))
//
// Guarantees:
//   - The module runs exactly as in wasm, minus the memory: every host call is
//     encoded with package abi, decoded by the fake host, answered, encoded and
//     decoded again, so encoding bugs fail unit tests. Built-in types travel as
//     protobuf, custom resources as JSON, like under the real host.
//   - The fake host keeps API-server bookkeeping: uid, creationTimestamp,
//     resourceVersion (optimistic concurrency: a stale update is a Conflict),
//     generation (bumped when anything but metadata and status changes), the
//     status subresource (status ignored by create/update/patch, everything else
//     ignored by status writes), finalizers and deletionTimestamp, generateName,
//     and garbage collection of dependents through ownerReferences.
//   - Patches: JSON merge, JSON patch and strategic merge (built-in types only,
//     415 for others) are applied as the API server does. Server-side apply
//     runs apimachinery's field manager: managedFields are kept for every
//     write, fields a manager stops applying are removed, and applying a field
//     another manager owns is a Conflict unless forced. Field sets are deduced
//     from the objects (no OpenAPI schema), so every list is atomic. The module
//     writes as ModuleFieldManager, the test as TestFieldManager.
//   - Every call the module makes is recorded (Actions, Writes), and so are its
//     events and log lines. Calls made through Env.Client (the test's own
//     fixtures and "other controllers") are not recorded, keep the status they
//     are given, and are never failed by FailNext.
//   - Permissions are not checked: that is the real host's job.
package sdktest
