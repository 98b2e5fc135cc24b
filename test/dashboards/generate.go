package dashboards

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
)

// RepoRoot returns the root of the wre checkout this package lives in.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Paths of the generated files' sources and outputs, relative to RepoRoot.
const (
	AlertsFile         = "dashboards/alerts.yaml"
	AlertTestsFile     = "dashboards/alerts_test.yaml"
	PrometheusRuleFile = "deploy/components/prometheus-operator/prometheusrule.yaml"
	DashboardsDir      = "dashboards"
	OperationsDoc      = "docs/operations.md"
)

// DashboardJSON renders d as Grafana imports it.
func DashboardJSON(d *Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const prometheusRuleHeader = `# Code generated from dashboards/alerts.yaml by ` + "`go test . -update`" + ` in
# test/dashboards. DO NOT EDIT: change dashboards/alerts.yaml and regenerate.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: wre
  namespace: wre-system
  labels:
    app.kubernetes.io/name: wre
spec:
`

// PrometheusRule wraps a Prometheus rule file (top-level groups:) into a
// PrometheusRule whose spec is that file, comments and all: the text is
// indented under spec, so the rules stay byte-for-byte those of the file.
// The file's leading comment block is dropped (it describes the file).
func PrometheusRule(rules []byte) []byte {
	lines := strings.Split(strings.TrimRight(string(rules), "\n"), "\n")
	for len(lines) > 0 && (strings.HasPrefix(lines[0], "#") || strings.TrimSpace(lines[0]) == "") {
		lines = lines[1:]
	}
	var b strings.Builder
	b.WriteString(prometheusRuleHeader)
	for _, l := range lines {
		if l != "" {
			b.WriteString("  ")
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
