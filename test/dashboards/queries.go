package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
)

// Query is a PromQL expression (Grafana variables allowed) and where it
// comes from.
type Query struct{ Where, Expr string }

// DashboardQueries returns every query of the checked-in dashboards/*.json:
// panel targets and template-variable queries. It reads the JSON operators
// import, not the Go that generates it.
func DashboardQueries() ([]Query, error) {
	files, err := filepath.Glob(filepath.Join(RepoRoot(), DashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no dashboards in %s: %v", DashboardsDir, err)
	}
	var qs []Query
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var d Dashboard
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := filepath.Base(f)
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				qs = append(qs, Query{fmt.Sprintf("%s variable %s", name, v.Name), v.Query})
			}
		}
		var walk func(ps []*Panel)
		walk = func(ps []*Panel) {
			for _, p := range ps {
				for _, tg := range p.Targets {
					qs = append(qs, Query{fmt.Sprintf("%s panel %q query %s", name, p.Title, tg.RefID), tg.Expr})
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
	}
	return qs, nil
}

// AlertRules parses and validates dashboards/alerts.yaml.
func AlertRules() (*rulefmt.RuleGroups, error) {
	groups, errs := rulefmt.ParseFile(filepath.Join(RepoRoot(), AlertsFile), false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	return groups, errors.Join(errs...)
}

// AlertQueries returns the expression of every rule in dashboards/alerts.yaml.
func AlertQueries() ([]Query, error) {
	groups, err := AlertRules()
	if err != nil {
		return nil, err
	}
	var qs []Query
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			qs = append(qs, Query{"alert " + r.Alert + r.Record, r.Expr})
		}
	}
	return qs, nil
}
