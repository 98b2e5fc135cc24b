// Package metrics is the one place where the engine defines and registers its
// Prometheus metrics.
//
// Guarantees:
//   - Every metric lives on the Registry returned by New; nothing is registered
//     on prometheus.DefaultRegisterer, so several engines (or tests) in one
//     process never collide.
//   - Names and labels are those of controller-runtime
//     (controller_runtime_reconcile_total{controller,result}, …), client-go's
//     workqueue (workqueue_depth{name}, …), client-go's REST client
//     (rest_client_requests_total{code,method,host}, …) and client-go's leader
//     election (leader_election_master_status{name}), so existing dashboards and
//     alerts work unchanged.
//   - The label series of a controller are created when the controller is added
//     (AddController), so a dashboard sees zeros instead of missing series, and
//     deleted when it is removed (RemoveController), so modules that come and go
//     do not grow the series set without bound.
//   - client-go's REST client metrics are process-wide in client-go; they are
//     installed once per process and exposed on every Registry.
package metrics
