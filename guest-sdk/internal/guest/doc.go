// Package guest implements the module side of the wre ABI on top of a Caller:
// the client.Client, the logr sink and the event recorder. The wasm exports and
// the native test harness both use it, so they share every encoding path.
//
// Guarantees:
//   - Every host call is one abi.Request marshalled, passed to Caller.Call, and
//     one abi.Response unmarshalled; nothing else crosses the boundary.
//   - A response whose code is not 2xx becomes a *apierrors.StatusError with the
//     code, reason, message and details the host sent.
//   - Objects that have generated protobuf methods are sent and requested as
//     protobuf; all others as JSON with apiVersion and kind set.
package guest
