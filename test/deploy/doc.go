// Package deploy renders the kustomizations under deploy/ the way
// `kubectl apply -k` does (with the kustomize library, no kubectl) and checks
// the result; the cluster subpackage checks it against a real API server.
//
// Guarantees of the tests:
//   - Every kustomization under deploy/ renders; the examples overlay renders
//     with placeholder module ConfigMaps when `wre package` has not run yet.
//   - The base holds no Prometheus-operator objects and hardens the engine pod
//     (non-root, read-only root filesystem, no privilege escalation, seccomp
//     RuntimeDefault, all capabilities dropped).
//   - A wre binary named by WRE_BINARY is statically linked and knows every
//     flag the Deployment passes it.
package deploy
