package metrics

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
)

// client-go reports REST client metrics through process-wide hooks that can be
// set once (clientmetrics.Register uses a sync.Once), so the collectors are
// process-wide too and every Registry registers the same ones.
var (
	restRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rest_client_requests_total",
		Help: "Number of HTTP requests, partitioned by status code, method, and host.",
	}, []string{"code", "method", "host"})
	restLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rest_client_request_duration_seconds",
		Help:    "Request latency in seconds. Broken down by verb, and host.",
		Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0},
	}, []string{"verb", "host"})
	installRESTHooks sync.Once
)

func registerRESTClientMetrics(reg prometheus.Registerer) {
	installRESTHooks.Do(func() {
		clientmetrics.Register(clientmetrics.RegisterOpts{
			RequestResult:  resultAdapter{restRequests},
			RequestLatency: latencyAdapter{restLatency},
		})
	})
	reg.MustRegister(restRequests, restLatency)
}

type resultAdapter struct{ metric *prometheus.CounterVec }

func (a resultAdapter) Increment(_ context.Context, code, method, host string) {
	a.metric.WithLabelValues(code, method, host).Inc()
}

type latencyAdapter struct{ metric *prometheus.HistogramVec }

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	a.metric.WithLabelValues(strings.ToUpper(verb), u.Host).Observe(latency.Seconds())
}
