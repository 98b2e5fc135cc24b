package dashboards

import (
	"fmt"
	"strings"
)

// ds is the datasource of every panel and query: the $datasource variable.
var ds = &Datasource{Type: "prometheus", UID: "${datasource}"}

// Label matchers every query starts from. job is a hidden constant variable
// ("wre") that operators with another job name change once.
const (
	scope   = `job="$job", namespace=~"$namespace", pod=~"$pod"`
	byCtl   = scope + `, controller=~"$module"` // controller-runtime metrics
	byMod   = scope + `, module=~"$module"`     // wre_* module metrics
	byQueue = scope + `, name=~"$module"`       // workqueue metrics: queue name = module name
)

// variables are the template variables of every wre dashboard.
func variables() []Variable {
	query := func(name, label, q string) Variable {
		return Variable{
			Name: name, Label: label, Type: "query", Datasource: ds,
			Query: q, Definition: q, Refresh: 2, Sort: 1,
			IncludeAll: true, Multi: true, AllValue: ".*",
			Current: Current{Text: "All", Value: "$__all"},
		}
	}
	return []Variable{
		{Name: "datasource", Label: "Data source", Type: "datasource", Query: "prometheus"},
		{Name: "job", Type: "constant", Query: "wre", Hide: 2, Current: Current{Text: "wre", Value: "wre"}},
		query("namespace", "Namespace", `label_values(process_start_time_seconds{job="$job"}, namespace)`),
		query("pod", "Pod", `label_values(process_start_time_seconds{job="$job", namespace=~"$namespace"}, pod)`),
		query("module", "Module", `label_values(controller_runtime_max_concurrent_reconciles{job="$job", namespace=~"$namespace"}, controller)`),
	}
}

// q is one query with its legend.
func q(expr, legend string) Target { return Target{Expr: expr, LegendFormat: legend, Range: true} }

// rate is rate() over Grafana's rate interval.
func rate(metric, matchers string) string {
	return fmt.Sprintf("rate(%s{%s}[$__rate_interval])", metric, matchers)
}

// quantiles are p50, p95 and p99 of a histogram, aggregated by the by labels.
func quantiles(histogram, matchers, by, legend string) []Target {
	var ts []Target
	for _, p := range []string{"0.5", "0.95", "0.99"} {
		expr := fmt.Sprintf("histogram_quantile(%s, sum by (%s, le) (%s))", p, by, rate(histogram+"_bucket", matchers))
		ts = append(ts, q(expr, fmt.Sprintf("p%s %s", strings.TrimPrefix(p, "0."), legend)))
	}
	ts[0].LegendFormat = "p50 " + legend
	return ts
}

type panelOpt func(*Panel)

func unit(u string) panelOpt { return func(p *Panel) { p.FieldConfig.Defaults.Unit = u } }
func width(w int) panelOpt   { return func(p *Panel) { p.GridPos.W = w } }
func desc(d string) panelOpt { return func(p *Panel) { p.Description = d } }
func stacked() panelOpt {
	return func(p *Panel) {
		p.FieldConfig.Defaults.Custom = map[string]any{"stacking": map[string]any{"mode": "normal"}, "fillOpacity": 30}
	}
}

// thresholds colours values at or above each step (green below the first).
func thresholds(red float64) panelOpt {
	return func(p *Panel) {
		p.FieldConfig.Defaults.Thresholds = &Thresholds{Mode: "absolute", Steps: []Step{{Color: "green"}, {Color: "red", Value: &red}}}
	}
}

func zero() *float64 { z := 0.0; return &z }

func panel(kind, title string, targets []Target, opts ...panelOpt) *Panel {
	p := &Panel{
		Type: kind, Title: title, Datasource: ds, Targets: targets,
		GridPos:     GridPos{W: 8, H: 8},
		FieldConfig: &FieldConfig{Defaults: FieldDefaults{Min: zero()}, Overrides: []any{}},
	}
	switch kind {
	case "timeseries":
		p.Options = map[string]any{
			"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		}
	case "stat":
		p.GridPos.H = 4
		p.Options = map[string]any{
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "value", "graphMode": "area", "textMode": "auto",
		}
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func timeseries(title string, targets []Target, opts ...panelOpt) *Panel {
	return panel("timeseries", title, targets, opts...)
}

func stat(title, expr string, opts ...panelOpt) *Panel {
	return panel("stat", title, []Target{q(expr, "")}, append([]panelOpt{width(6)}, opts...)...)
}

// row is a titled group of panels.
type row struct {
	title  string
	panels []*Panel
}

// dashboard lays the rows out top to bottom, each row's panels left to right
// (wrapping at Grafana's 24 columns), and numbers panels and queries.
func dashboard(uid, title, description string, rows ...row) *Dashboard {
	d := &Dashboard{
		UID: uid, Title: title, Description: description,
		Tags: []string{"wre"}, Editable: true, GraphTooltip: 1, Refresh: "30s",
		SchemaVersion: 39, Time: TimeRange{From: "now-3h", To: "now"}, Timezone: "browser",
		Links:      []Link{{Title: "wre dashboards", Type: "dashboards", Tags: []string{"wre"}, AsDropdn: true}},
		Templating: Templating{List: variables()},
	}
	id, y := 0, 0
	for _, r := range rows {
		id++
		collapsed := false
		d.Panels = append(d.Panels, &Panel{ID: id, Type: "row", Title: r.title, Collapsed: &collapsed, GridPos: GridPos{H: 1, W: 24, Y: y}})
		y++
		x, rowH := 0, 0
		for _, p := range r.panels {
			if x+p.GridPos.W > 24 {
				x, y, rowH = 0, y+rowH, 0
			}
			id++
			p.ID = id
			p.GridPos.X, p.GridPos.Y = x, y
			x += p.GridPos.W
			rowH = max(rowH, p.GridPos.H)
			for i := range p.Targets {
				p.Targets[i].RefID = string(rune('A' + i))
				p.Targets[i].Datasource = ds
			}
			d.Panels = append(d.Panels, p)
		}
		y += rowH
	}
	return d
}
