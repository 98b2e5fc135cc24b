package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/test/dashboards"
	"github.com/wre-dev/wre/test/deploy"
)

var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// grafanaValues are what the dashboards' variables resolve to against one
// local engine: every namespace, pod and module.
func expandForPrometheus(expr string) string {
	if m := regexp.MustCompile(`^\s*label_values\((.*),\s*\w+\s*\)\s*$`).FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		switch strings.Trim(v, "${}") {
		case "__rate_interval", "__range":
			return "1m"
		case "__interval":
			return "1s"
		case "job":
			return "wre"
		default:
			return ".*"
		}
	})
}

// filters are expressions whose empty result is an answer, not missing data.
var filters = regexp.MustCompile(`==|!=|!~|>|<|absent\(`)

type promResponse struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string            `json:"resultType"`
		Result     json.RawMessage   `json:"result"`
		Groups     []json.RawMessage `json:"groups"`
	} `json:"data"`
}

func promQuery(t *testing.T, base, expr string) (promResponse, int, error) {
	var r promResponse
	body, err := get200(t.Context(), base+"/api/v1/query?query="+url.QueryEscape(expr))
	if err != nil {
		return r, 0, err
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, 0, err
	}
	if r.Status != "success" {
		return r, 0, fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	var series []json.RawMessage
	if r.Data.ResultType == "vector" || r.Data.ResultType == "matrix" {
		if err := json.Unmarshal(r.Data.Result, &series); err != nil {
			return r, 0, err
		}
		return r, len(series), nil
	}
	return r, 1, nil
}

// startPrometheus runs Debian's Prometheus (package prometheus) scraping the
// engine e every second as job wre, with dashboards/alerts.yaml loaded, and
// returns its base URL once it has enough samples for rate() over a minute.
// A secured engine is scraped as the prometheus-operator component
// configures it: HTTPS without verifying the self-signed certificate, with
// Prometheus's ServiceAccount token from a file.
func startPrometheus(t *testing.T, e *engine) string {
	metricsAddr := e.metrics
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: `make tools` installs it (apt-get install -y prometheus)")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	auth := ""
	if e.scheme == "https" {
		tokenFile := filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(prometheusToken(t)), 0o600))
		auth = fmt.Sprintf("    scheme: https\n    bearer_token_file: %q\n    tls_config: {insecure_skip_verify: true}\n", tokenFile)
	}
	config := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: wre
%s    static_configs:
      - targets: [%q]
        labels: {namespace: %s, pod: wre-test}
`, filepath.Join(deploy.RepoRoot(), "dashboards", "alerts.yaml"), auth, metricsAddr, engineNamespace)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644))
	var logs strings.Builder
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", tail(logs.String(), 20))
		}
	})
	base := "http://" + addr
	// Enough samples for rate() over a minute: at least 10 scrapes.
	eventually(t, 60*time.Second, func() error {
		_, n, err := promQuery(t, base, `count_over_time(up{job="wre"}[1m]) >= 10`)
		if err == nil && n == 0 {
			err = fmt.Errorf("fewer than 10 scrapes of %s yet", metricsAddr)
		}
		return err
	})
	return base
}

// checkDashboardsWithPrometheus runs every dashboard and alert query against
// Prometheus: each must evaluate, every metric it reads must be in the
// engine's scrape with the labels it matches on, every series selector in it
// must match series in Prometheus, and each query that is not a filter
// (threshold, absent()) must return data. A series that the engine stops
// serving fails it.
func checkDashboardsWithPrometheus(t *testing.T, base string, scrape []byte) {
	scrapeFile := filepath.Join(t.TempDir(), "scrape.txt")
	require.NoError(t, os.WriteFile(scrapeFile, scrape, 0o644))
	served, err := dashboards.LoadExported(scrapeFile)
	require.NoError(t, err)

	dq, err := dashboards.DashboardQueries()
	require.NoError(t, err)
	aq, err := dashboards.AlertQueries()
	require.NoError(t, err)
	withData, filtered, selectors, matched := 0, 0, 0, 0
	for _, q := range append(dq, aq...) {
		expr := expandForPrometheus(q.Expr)
		_, n, err := promQuery(t, base, expr)
		if !assert.NoError(t, err, "%s: %s", q.Where, expr) {
			continue
		}
		sels, err := dashboards.Selectors(q.Expr)
		require.NoError(t, err)
		for _, s := range sels {
			assert.NoError(t, served.Check(s), "%s: %s", q.Where, q.Expr)
		}
		series, err := dashboards.SeriesQueries(expr)
		require.NoError(t, err)
		for _, sq := range series {
			selectors++
			_, m, err := promQuery(t, base, sq)
			if assert.NoError(t, err, "%s: %s", q.Where, sq) && assert.Positive(t, m, "%s: no series %s", q.Where, sq) {
				matched++
			}
		}
		switch {
		case n > 0:
			withData++
		case filters.MatchString(expr):
			filtered++
			t.Logf("empty by design (nothing to report on a healthy engine): %s", q.Where)
		default:
			assert.Fail(t, "no data", "%s: %s", q.Where, expr)
		}
	}
	t.Logf("%d of %d dashboard and alert queries return data, %d are filters with nothing to report; %d of the %d series selectors in them match series",
		withData, len(dq)+len(aq), filtered, matched, selectors)
}

// checkAlertRules checks that Prometheus loaded and evaluated every alert
// rule and that exactly the alerts of firing fire (alert name → value of
// its module label); it waits up to a minute for them.
func checkAlertRules(t *testing.T, base string, firing map[string]string) {
	eventually(t, 60*time.Second, func() error {
		body, err := get200(t.Context(), base+"/api/v1/rules")
		if err != nil {
			return err
		}
		var rules struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name   string `json:"name"`
						Health string `json:"health"`
						State  string `json:"state"`
						Alerts []struct {
							Labels map[string]string `json:"labels"`
							State  string            `json:"state"`
						} `json:"alerts"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &rules); err != nil {
			return err
		}
		var errs []error
		n := 0
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health != "ok" {
					errs = append(errs, fmt.Errorf("%s: health %q", r.Name, r.Health))
				}
				module, want := firing[r.Name]
				fired := false
				for _, a := range r.Alerts {
					if a.State != "firing" {
						continue
					}
					if !want || a.Labels["module"] != module {
						errs = append(errs, fmt.Errorf("%s fires unexpectedly: %v", r.Name, a.Labels))
					}
					fired = true
				}
				if want && !fired {
					errs = append(errs, fmt.Errorf("%s does not fire for module %s (state %s)", r.Name, module, r.State))
				}
			}
		}
		if want := alertRuleCount(t); n != want {
			errs = append(errs, fmt.Errorf("%d alert rules loaded by Prometheus, want %d (dashboards/alerts.yaml)", n, want))
		}
		return errors.Join(errs...)
	})
}

// alertRuleCount counts the alert rules of dashboards/alerts.yaml, the file
// Prometheus loads.
func alertRuleCount(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deploy.RepoRoot(), "dashboards", "alerts.yaml"))
	require.NoError(t, err)
	return len(regexp.MustCompile(`(?m)^\s*- alert:`).FindAll(raw, -1))
}
