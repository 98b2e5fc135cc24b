// Package dashboards generates the Grafana dashboards in dashboards/ and the
// PrometheusRule of deploy/components/prometheus-operator, and tests them.
//
// Guarantees of the tests:
//   - The checked-in dashboards/*.json and prometheusrule.yaml are exactly what
//     this package generates (dashboards from Go, the PrometheusRule from
//     dashboards/alerts.yaml); regenerate with `go test . -update`.
//   - Every PromQL expression of a panel, a template variable or an alert
//     parses, and every metric it reads, with every label it matches on, is
//     exported by the engine: by the scrape named by WRE_METRICS_URL or
//     WRE_METRICS_FILE, else by the fixture testdata/metrics.txt.
//   - Every alert links a runbook section that exists in docs/operations.md.
//   - promtool (Debian's prometheus package) accepts the rules, their unit
//     tests (dashboards/alerts_test.yaml) and the metrics.
package dashboards
