package dashboards

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Exported maps every series name a scrape yields (histograms expanded into
// _bucket, _sum and _count) to the label names seen on it.
type Exported map[string][]string

// TargetLabels are attached by Prometheus (the ServiceMonitor's relabelling)
// rather than exported by the engine.
var TargetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// SyntheticMetrics are made by Prometheus itself rather than scraped.
var SyntheticMetrics = []string{"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped"}

// ReadSource returns the bytes of a Prometheus text exposition from an
// http(s) URL or a file.
func ReadSource(source string) ([]byte, error) {
	if !strings.HasPrefix(source, "http://") && !strings.HasPrefix(source, "https://") {
		return os.ReadFile(source)
	}
	resp, err := http.Get(source)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", source, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", source, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// LoadExported reads a Prometheus text exposition from an http(s) URL or a
// file.
func LoadExported(source string) (Exported, error) {
	data, err := ReadSource(source)
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(data)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics of %s: %w", source, err)
	}
	exp := Exported{}
	for name, f := range families {
		var labelNames []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(labelNames, l.GetName()) {
					labelNames = append(labelNames, l.GetName())
				}
			}
		}
		names := []string{name}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names = append(names, name+"_bucket", name+"_sum", name+"_count")
		case dto.MetricType_SUMMARY:
			names = append(names, name+"_sum", name+"_count")
		}
		for _, n := range names {
			ls := slices.Clone(labelNames)
			if n == name+"_bucket" {
				ls = append(ls, "le")
			}
			exp[n] = ls
		}
	}
	return exp, nil
}

// Check returns an error if s reads a metric the engine does not export or
// matches on a label that metric does not have.
func (e Exported) Check(s Selector) error {
	if slices.Contains(SyntheticMetrics, s.Metric) {
		return nil
	}
	have, ok := e[s.Metric]
	if !ok {
		return fmt.Errorf("metric %s is not exported", s.Metric)
	}
	for _, l := range s.Labels {
		if !slices.Contains(have, l) && !slices.Contains(TargetLabels, l) {
			return fmt.Errorf("metric %s has no label %q (it has %v)", s.Metric, l, have)
		}
	}
	return nil
}
