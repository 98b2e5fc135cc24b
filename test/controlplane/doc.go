// Package controlplane runs a real, local Kubernetes control plane — etcd,
// kube-apiserver and kube-controller-manager built from source — for tests and
// for humans.
//
// Guarantees:
//   - Binaries are built once through the Go module proxy from the pinned tools
//     modules under test/tools and cached outside the checkout (see CacheDir);
//     a cached binary is only ever complete (written to a temp name, renamed).
//     Concurrent builders serialise on a file lock.
//   - A build is one go build per tools module, all in parallel, and never
//     silent for longer than ProgressInterval: each step is announced as
//     step n of m with its packages and release, then reported with the
//     packages compiled or modules downloaded so far.
//   - kubectl of the same release is built only on demand (EnsureKubectl).
//   - Every component listens on free loopback ports in a fresh temporary
//     directory; several control planes can run side by side. When a component
//     loses its port to another process before binding it, Start retries on
//     new ports (three attempts in all).
//   - The API server uses token authentication (an admin identity in
//     system:masters), RBAC authorization and a service-account key pair; the
//     controller manager runs the garbage-collector, namespace,
//     service-account and ClusterRole-aggregation controllers.
//   - Stop leaves no process, port, directory or state.json behind:
//     components run in their own process groups and are stopped with
//     SIGTERM, a short grace, then SIGKILL.
//   - A test process that dies before Stop (a panic, -timeout, SIGKILL) leaks
//     no process: components die with it (PR_SET_PDEATHSIG). Its temporary
//     directory stays until the next Start without Options.Dir removes it:
//     the owner holds a flock on <dir>/.lock for the control plane's lifetime,
//     and Start sweeps os.TempDir()/wre-controlplane-* for directories whose
//     lock is free (or, without a lock file, that are older than ten minutes)
//     and that no running process names on its command line.
//   - StopDetached signals only processes whose command line names the
//     control plane directory, never an unrelated process that reuses a
//     recorded pid; it stops the recorded ones and any component restarted
//     since (StopAPIServer/StartAPIServer and StopEtcd/StartEtcd also keep
//     the recorded ids current).
package controlplane
