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
//
// The cluster subpackage, against the real local control plane:
//   - every object of every kustomization passes server-side dry-run, without
//     API warnings (pod security of wre-system included);
//   - as the deployed ServiceAccount, what the engine needs is allowed and
//     what it must not do (Secrets, ConfigMap writes, other Leases, escalation,
//     impersonation outside wre-system) is denied; with the examples overlay,
//     the example modules' rights arrive through ClusterRole aggregation;
//   - WRE_BINARY, run with the Deployment's flags as that ServiceAccount,
//     leads, reconciles Widgets and logs no Forbidden; Debian's Prometheus
//     scrapes it with dashboards/alerts.yaml loaded, and every dashboard query
//     over metrics it serves returns data.
package deploy
