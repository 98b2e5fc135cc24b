package dashboards

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Selector is one metric read by a query, with the labels it matches on.
type Selector struct {
	Metric string
	Labels []string
}

// promql parses the PromQL that Prometheus accepts without feature flags.
var promql = parser.NewParser(parser.Options{})

var (
	durationVar = regexp.MustCompile(`\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}`)
	otherVar    = regexp.MustCompile(`\$\{[A-Za-z0-9_]+(:[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*`)
	labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)
)

// expandGrafana replaces Grafana's template variables with values that make
// the query valid PromQL: durations for $__rate_interval and friends, a plain
// word for every other variable (they only occur inside label values).
func expandGrafana(expr string) string {
	expr = durationVar.ReplaceAllString(expr, "5m")
	return otherVar.ReplaceAllString(expr, "var")
}

// Selectors parses a PromQL expression (Grafana variables allowed, and the
// label_values(selector, label) form of variable queries) and returns every
// metric selector in it.
func Selectors(expr string) ([]Selector, error) {
	var extraLabel string
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		expr, extraLabel = m[1], m[2]
	}
	ast, err := promql.ParseExpr(expandGrafana(expr))
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var sels []Selector
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := Selector{Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				if m.Type == labels.MatchEqual {
					s.Metric = m.Value
				}
				continue
			}
			s.Labels = append(s.Labels, m.Name)
		}
		if extraLabel != "" {
			s.Labels = append(s.Labels, extraLabel)
		}
		sels = append(sels, s)
		return nil
	})
	if len(sels) == 0 {
		return nil, fmt.Errorf("%q reads no metric", strings.TrimSpace(expr))
	}
	return sels, nil
}

// SeriesQueries parses expr (plain PromQL: Grafana variables already
// replaced) and returns each metric selector in it as a query of its own,
// without offset or @ modifiers. A query whose result is empty by design (a
// threshold, absent()) still proves something when every one of these
// returns series.
func SeriesQueries(expr string) ([]string, error) {
	ast, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var qs []string
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			plain := &parser.VectorSelector{Name: vs.Name, LabelMatchers: vs.LabelMatchers}
			qs = append(qs, plain.String())
		}
		return nil
	})
	if len(qs) == 0 {
		return nil, fmt.Errorf("%q reads no metric", strings.TrimSpace(expr))
	}
	return qs, nil
}
