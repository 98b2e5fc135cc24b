// Package controlplane runs a real, local Kubernetes control plane — etcd,
// kube-apiserver and kube-controller-manager built from source — for tests and
// for humans.
//
// Guarantees:
//   - Binaries are built once through the Go module proxy from the pinned tools
//     modules under test/tools and cached outside the checkout (see CacheDir);
//     a cached binary is only ever complete (written to a temp name, renamed).
//     Concurrent builders serialise on a file lock.
//   - Every component listens on free loopback ports in a fresh temporary
//     directory; several control planes can run side by side.
//   - The API server uses token authentication (an admin identity in
//     system:masters), RBAC authorization and a service-account key pair; the
//     controller manager runs the garbage-collector, namespace,
//     service-account and ClusterRole-aggregation controllers.
//   - Stop leaves no process, port or directory behind, also when a test fails
//     or panics: components run in their own process groups, die with the test
//     process (PR_SET_PDEATHSIG), and are stopped with SIGTERM, a short grace,
//     then SIGKILL.
package controlplane
