package metricstest_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/wre-dev/wre/engine/metrics/metricstest"
)

func TestLookup(t *testing.T) {
	reg := prometheus.NewRegistry()
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"k"})
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	histogram := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"})
	untyped := prometheus.NewUntypedFunc(prometheus.UntypedOpts{Name: "u", Help: "u"}, func() float64 { return 7 })
	reg.MustRegister(counter, gauge, histogram, untyped)
	counter.WithLabelValues("a").Add(2)
	counter.WithLabelValues("b").Add(3)
	gauge.Set(4)
	histogram.Observe(1)
	histogram.Observe(2)

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
		found  bool
	}{
		{"c_total", map[string]string{"k": "b"}, 3, true},
		{"c_total", map[string]string{"k": "z"}, 0, false},
		{"g", nil, 4, true},
		{"h_seconds", nil, 2, true},
		{"u", nil, 7, true},
		{"missing", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := metricstest.Lookup(t, reg, tt.name, tt.labels)
			assert.Equal(t, tt.found, ok)
			assert.Equal(t, tt.want, got)
			if ok {
				assert.Equal(t, tt.want, metricstest.Value(t, reg, tt.name, tt.labels))
			}
		})
	}
}
