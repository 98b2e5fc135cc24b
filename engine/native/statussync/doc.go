// Package statussync is a native Go reconciler for the demo Widget resource
// (demo.wre.dev/v1, namespaced): it copies spec.desired to status.current
// through the status subresource.
//
// It is the engine's reference reconciler — used by the engine's integration
// tests, by `wre run --native-demo`, and as the baseline that wasm reconcilers
// are benchmarked against — so it does what a well-behaved controller does and
// no more:
//   - reads come from the shared informer cache, writes go to the API server;
//   - a Widget that is gone, or already converged, costs no API call;
//   - a stale cache read ends in a 409 Conflict from the API server, which is
//     returned as an error so that the engine retries with backoff once the
//     cache has caught up.
package statussync
