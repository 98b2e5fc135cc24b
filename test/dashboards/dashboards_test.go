package dashboards

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the generated dashboards/*.json and prometheusrule.yaml")

func repoPath(rel string) string { return filepath.Join(RepoRoot(), filepath.FromSlash(rel)) }

// golden compares got with the checked-in file rel, or rewrites it with -update.
func golden(t *testing.T, rel string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(repoPath(rel), got, 0o644))
		return
	}
	want, err := os.ReadFile(repoPath(rel))
	require.NoError(t, err, "run `go test . -update` in test/dashboards")
	assert.Equal(t, string(want), string(got), "%s is out of date: run `go test . -update` in test/dashboards", rel)
}

func TestDashboardsGenerated(t *testing.T) {
	for file, d := range Dashboards() {
		t.Run(file, func(t *testing.T) {
			got, err := DashboardJSON(d)
			require.NoError(t, err)
			golden(t, DashboardsDir+"/"+file, got)
		})
	}
}

func TestPrometheusRuleGenerated(t *testing.T) {
	rules, err := os.ReadFile(repoPath(AlertsFile))
	require.NoError(t, err)
	got := PrometheusRule(rules)
	golden(t, PrometheusRuleFile, got)

	// The PrometheusRule's spec is the rule file, structurally.
	var pr struct {
		Kind string    `yaml:"kind"`
		Spec yaml.Node `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(got, &pr))
	assert.Equal(t, "PrometheusRule", pr.Kind)
	var spec, file any
	require.NoError(t, pr.Spec.Decode(&spec))
	require.NoError(t, yaml.Unmarshal(rules, &file))
	assert.Equal(t, file, spec)
}

func alertRules(t *testing.T) *rulefmt.RuleGroups {
	groups, err := AlertRules()
	require.NoError(t, err)
	return groups
}

// scrapeFixture is a real scrape of `wre run` running the example modules
// as deployed (deploy/'s flags, leader election on).
var scrapeFixture = filepath.Join("testdata", "metrics.txt")

// defaultRunFixture is a real scrape of `wre run` with the default flags, one
// replica without leader election, running the example modules (make demo).
var defaultRunFixture = filepath.Join("testdata", "metrics-default.txt")

// metricsSources names the expositions that the queries are checked against:
// WRE_METRICS_URL or WRE_METRICS_FILE alone when set, else the fixtures.
func metricsSources() []string {
	if u := os.Getenv("WRE_METRICS_URL"); u != "" {
		return []string{u}
	}
	if f := os.Getenv("WRE_METRICS_FILE"); f != "" {
		return []string{f}
	}
	return []string{scrapeFixture, defaultRunFixture}
}

func loadSources(t *testing.T, srcs []string) Exported {
	t.Helper()
	all := Exported{}
	for _, src := range srcs {
		exp, err := LoadExported(src)
		require.NoError(t, err)
		for name, labels := range exp {
			all[name] = append(all[name], labels...)
		}
	}
	return all
}

// TestQueriesUseExportedMetrics proves that every metric a panel, a variable
// or an alert reads is exported by the engine, with the labels it matches on,
// in each exposition alone: a deployed engine and a default single replica.
func TestQueriesUseExportedMetrics(t *testing.T) {
	dq, err := DashboardQueries()
	require.NoError(t, err)
	aq, err := AlertQueries()
	require.NoError(t, err)
	qs := append(dq, aq...)
	for _, src := range metricsSources() {
		t.Run(filepath.Base(src), func(t *testing.T) {
			exported := loadSources(t, []string{src})
			t.Logf("checking against %d series names from %s", len(exported), src)
			used := map[string]bool{}
			for _, q := range qs {
				sels, err := Selectors(q.Expr)
				if !assert.NoError(t, err, q.Where) {
					continue
				}
				for _, s := range sels {
					used[s.Metric] = true
					assert.NoError(t, exported.Check(s), "%s: %s", q.Where, q.Expr)
				}
			}
			t.Logf("%d queries read %d metrics", len(qs), len(used))
		})
	}
}

func TestSelectors(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []Selector
	}{
		{`sum by (controller) (rate(controller_runtime_reconcile_total{job="$job", controller=~"${module}"}[$__rate_interval]))`,
			[]Selector{{"controller_runtime_reconcile_total", []string{"job", "controller"}}}},
		{`label_values(process_start_time_seconds{job="$job"}, namespace)`,
			[]Selector{{"process_start_time_seconds", []string{"job", "namespace"}}}},
		{`a / on (pod) b{x="1"}`, []Selector{{"a", nil}, {"b", []string{"x"}}}},
		{`{__name__="up", job="wre"}`, []Selector{{"up", []string{"job"}}}},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := Selectors(tc.expr)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := Selectors(`sum(rate(x[5m])`)
	assert.Error(t, err)
	_, err = Selectors(`vector(1)`)
	assert.Error(t, err, "a query that reads no metric")
}

func TestSeriesQueries(t *testing.T) {
	got, err := SeriesQueries(`sum by (module) ((wre_module_loads_total{job="wre", result="error"} > 0) unless (wre_module_loads_total{job="wre", result="error"} offset 15m)) or absent(up{job="wre"})`)
	require.NoError(t, err)
	assert.Equal(t, []string{
		`wre_module_loads_total{job="wre",result="error"}`,
		`wre_module_loads_total{job="wre",result="error"}`,
		`up{job="wre"}`,
	}, got)
	got, err = SeriesQueries(`rate({__name__="x", job=~"w.*"}[5m])`)
	require.NoError(t, err)
	assert.Equal(t, []string{`{__name__="x",job=~"w.*"}`}, got)
	_, err = SeriesQueries(`vector(1)`)
	assert.Error(t, err)
}

func TestCheckExported(t *testing.T) {
	exp, err := LoadExported(scrapeFixture)
	require.NoError(t, err)
	assert.NoError(t, exp.Check(Selector{"controller_runtime_reconcile_time_seconds_bucket", []string{"controller", "le", "pod"}}))
	assert.NoError(t, exp.Check(Selector{"up", []string{"job"}}))
	assert.ErrorContains(t, exp.Check(Selector{"controller_runtime_reconcile_totals", nil}), "not exported")
	assert.ErrorContains(t, exp.Check(Selector{"controller_runtime_reconcile_total", []string{"module"}}), `no label "module"`)
}

// GitHub's heading anchors: lower case, punctuation other than - and _
// dropped, spaces to -.
var anchorDrop = regexp.MustCompile(`[^\p{L}\p{N} _-]`)

func anchors(markdown string) []string {
	var as []string
	inFence := false
	for _, line := range strings.Split(markdown, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		as = append(as, strings.ReplaceAll(anchorDrop.ReplaceAllString(strings.ToLower(h), ""), " ", "-"))
	}
	return as
}

const runbookBase = "https://github.com/wre-dev/wre/blob/main/docs/operations.md#"

func TestEveryAlertHasARunbook(t *testing.T) {
	doc, err := os.ReadFile(repoPath(OperationsDoc))
	require.NoError(t, err)
	as := anchors(string(doc))
	for _, g := range alertRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			url := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, runbookBase)
			if assert.True(t, ok, "%s: runbook_url %q must start with %s", r.Alert, url, runbookBase) {
				assert.Contains(t, as, anchor, "%s: no heading for #%s in %s", r.Alert, anchor, OperationsDoc)
				assert.Equal(t, strings.ToLower(r.Alert), anchor, "%s: the runbook heading is the alert name", r.Alert)
			}
			assert.NotEmpty(t, r.Annotations["summary"], r.Alert)
			assert.NotEmpty(t, r.Labels["severity"], r.Alert)
		}
	}
}

// promtool runs Debian's promtool (package prometheus) with args in dir.
func promtool(t *testing.T, stdin []byte, args ...string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: `make tools` installs it (apt-get install -y prometheus)")
	}
	cmd := exec.CommandContext(t.Context(), path, args...)
	cmd.Dir = repoPath(DashboardsDir)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtool(t *testing.T) {
	t.Run("check rules", func(t *testing.T) { promtool(t, nil, "check", "rules", filepath.Base(AlertsFile)) })
	t.Run("test rules", func(t *testing.T) { promtool(t, nil, "test", "rules", filepath.Base(AlertTestsFile)) })
	for _, src := range metricsSources() {
		t.Run("check metrics "+filepath.Base(src), func(t *testing.T) {
			data, err := ReadSource(src)
			require.NoError(t, err)
			promtool(t, data, "check", "metrics")
		})
	}
	t.Run("unit tests cover the required alerts", func(t *testing.T) {
		data, err := os.ReadFile(repoPath(AlertTestsFile))
		require.NoError(t, err)
		var tests struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		require.NoError(t, yaml.Unmarshal(data, &tests))
		firing := map[string]bool{}
		for _, tc := range tests.Tests {
			for _, a := range tc.AlertRuleTest {
				firing[a.Alertname] = firing[a.Alertname] || len(a.ExpAlerts) > 0
			}
		}
		for _, g := range alertRules(t).Groups {
			for _, r := range g.Rules {
				assert.True(t, firing[r.Alert], "no unit test in %s makes %s fire", AlertTestsFile, r.Alert)
			}
		}
	})
}

var docLink = regexp.MustCompile(`\]\(#([^)]+)\)`)

func TestOperationsDocLinks(t *testing.T) {
	doc, err := os.ReadFile(repoPath(OperationsDoc))
	require.NoError(t, err)
	as := anchors(string(doc))
	for _, m := range docLink.FindAllStringSubmatch(string(doc), -1) {
		assert.Contains(t, as, m[1], "link to #%s", m[1])
	}
}
