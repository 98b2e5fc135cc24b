package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"

	"github.com/wre-dev/wre/engine/metrics"
	"github.com/wre-dev/wre/engine/metrics/metricstest"
	"github.com/wre-dev/wre/engine/queue"
)

func sample(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	return metricstest.Lookup(t, g, name, labels)
}

func TestControllerSeriesCreatedUpFront(t *testing.T) {
	r := metrics.New()
	r.Controller("widgets", 3)

	for _, res := range []string{"success", "error", "requeue", "requeue_after"} {
		v, ok := sample(t, r.Gatherer(), "controller_runtime_reconcile_total", map[string]string{"controller": "widgets", "result": res})
		assert.True(t, ok, "series for result %q exists before any reconcile", res)
		assert.Zero(t, v)
	}
	for _, name := range []string{
		"controller_runtime_reconcile_errors_total",
		"controller_runtime_terminal_reconcile_errors_total",
		"controller_runtime_reconcile_panics_total",
		"controller_runtime_reconcile_timeouts_total",
		"controller_runtime_active_workers",
		"controller_runtime_reconcile_time_seconds",
	} {
		_, ok := sample(t, r.Gatherer(), name, map[string]string{"controller": "widgets"})
		assert.True(t, ok, name)
	}
	v, _ := sample(t, r.Gatherer(), "controller_runtime_max_concurrent_reconciles", map[string]string{"controller": "widgets"})
	assert.Equal(t, 3.0, v)
}

func TestControllerRecording(t *testing.T) {
	tests := []struct {
		name     string
		record   func(c *metrics.Controller)
		expected map[string]float64 // metric name (result label after '/') → value
	}{
		{
			name:   "success",
			record: func(c *metrics.Controller) { c.Reconciled(metrics.ResultSuccess, time.Millisecond, false) },
			expected: map[string]float64{
				"controller_runtime_reconcile_total/success":       1,
				"controller_runtime_reconcile_errors_total":        0,
				"controller_runtime_reconcile_time_seconds":        1,
				"controller_runtime_reconcile_total/error":         0,
				"controller_runtime_reconcile_total/requeue_after": 0,
			},
		},
		{
			name:   "requeue after",
			record: func(c *metrics.Controller) { c.Reconciled(metrics.ResultRequeueAfter, time.Millisecond, false) },
			expected: map[string]float64{
				"controller_runtime_reconcile_total/requeue_after": 1,
				"controller_runtime_reconcile_total/success":       0,
			},
		},
		{
			name:   "retried error",
			record: func(c *metrics.Controller) { c.Reconciled(metrics.ResultError, time.Millisecond, false) },
			expected: map[string]float64{
				"controller_runtime_reconcile_total/error":           1,
				"controller_runtime_reconcile_errors_total":          1,
				"controller_runtime_terminal_reconcile_errors_total": 0,
			},
		},
		{
			name:   "terminal error",
			record: func(c *metrics.Controller) { c.Reconciled(metrics.ResultError, time.Millisecond, true) },
			expected: map[string]float64{
				"controller_runtime_reconcile_total/error":           1,
				"controller_runtime_reconcile_errors_total":          1,
				"controller_runtime_terminal_reconcile_errors_total": 1,
			},
		},
		{
			name: "panic and timeout",
			record: func(c *metrics.Controller) {
				c.Panicked()
				c.TimedOut()
				c.TimedOut()
			},
			expected: map[string]float64{
				"controller_runtime_reconcile_panics_total":   1,
				"controller_runtime_reconcile_timeouts_total": 2,
			},
		},
		{
			name: "active workers",
			record: func(c *metrics.Controller) {
				c.WorkerBusy(1)
				c.WorkerBusy(1)
				c.WorkerBusy(-1)
			},
			expected: map[string]float64{"controller_runtime_active_workers": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := metrics.New()
			tt.record(r.Controller("c", 1))
			for key, want := range tt.expected {
				name, result, _ := strings.Cut(key, "/")
				labels := map[string]string{"controller": "c"}
				if result != "" {
					labels["result"] = result
				}
				got, ok := sample(t, r.Gatherer(), name, labels)
				require.True(t, ok, key)
				assert.Equal(t, want, got, key)
			}
		})
	}
}

func TestRemoveController(t *testing.T) {
	r := metrics.New()
	r.Controller("gone", 1)
	r.Controller("kept", 1)
	r.PriorityDepth("gone", queue.PriorityHigh.String()).Inc()
	r.WorkqueueProvider().NewDepthMetric("gone").Inc()

	r.RemoveController("gone")

	for _, name := range []string{"controller_runtime_reconcile_total", "controller_runtime_max_concurrent_reconciles", "controller_runtime_reconcile_time_seconds"} {
		_, ok := sample(t, r.Gatherer(), name, map[string]string{"controller": "gone"})
		assert.False(t, ok, name)
		_, ok = sample(t, r.Gatherer(), name, map[string]string{"controller": "kept"})
		assert.True(t, ok, name)
	}
	for _, name := range []string{"workqueue_depth", "workqueue_depth_by_priority"} {
		_, ok := sample(t, r.Gatherer(), name, map[string]string{"name": "gone"})
		assert.False(t, ok, name)
	}
}

func TestWorkqueueProvider(t *testing.T) {
	r := metrics.New()
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "wq", MetricsProvider: r.WorkqueueProvider()})
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	item, _ := q.Get()
	q.Done(item)
	r.WorkqueueProvider().NewRetriesMetric("wq").Inc()
	r.WorkqueueProvider().NewUnfinishedWorkSecondsMetric("wq").Set(2)
	r.WorkqueueProvider().NewLongestRunningProcessorSecondsMetric("wq").Set(1.5)

	tests := []struct {
		name string
		want float64
	}{
		{"workqueue_depth", 1},
		{"workqueue_adds_total", 2},
		{"workqueue_queue_duration_seconds", 1},
		{"workqueue_work_duration_seconds", 1},
		{"workqueue_retries_total", 1},
		{"workqueue_unfinished_work_seconds", 2},
		{"workqueue_longest_running_processor_seconds", 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sample(t, r.Gatherer(), tt.name, map[string]string{"name": "wq"})
			require.True(t, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPriorityDepth(t *testing.T) {
	tests := []struct {
		priority queue.Priority
		label    string
	}{
		{queue.PriorityLow, "low"},
		{queue.PriorityNormal, "normal"},
		{queue.PriorityHigh, "high"},
		{queue.Priority(7), "7"},
	}
	r := metrics.New()
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			g := r.PriorityDepth("q", tt.priority.String())
			g.Inc()
			g.Inc()
			g.Dec()
			got, ok := sample(t, r.Gatherer(), "workqueue_depth_by_priority", map[string]string{"name": "q", "priority": tt.label})
			require.True(t, ok)
			assert.Equal(t, 1.0, got)
		})
	}
}

func TestLeaderStatus(t *testing.T) {
	r := metrics.New()
	r.SetLeader("wre", true)
	got, _ := sample(t, r.Gatherer(), "leader_election_master_status", map[string]string{"name": "wre"})
	assert.Equal(t, 1.0, got)
	r.SetLeader("wre", false)
	got, _ = sample(t, r.Gatherer(), "leader_election_master_status", map[string]string{"name": "wre"})
	assert.Zero(t, got)
}

func TestRESTClientMetricsAndHandler(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"}}`)
	}))
	defer api.Close()
	// Two registries in one process both expose the process-wide client-go metrics.
	first, second := metrics.New(), metrics.New()

	cfg := &rest.Config{Host: api.URL, ContentConfig: rest.ContentConfig{
		GroupVersion:         &schema.GroupVersion{Version: "v1"},
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
	}, APIPath: "/api"}
	client, err := rest.RESTClientFor(cfg)
	require.NoError(t, err)
	require.NoError(t, client.Get().Resource("configmaps").Namespace("default").Name("x").Do(t.Context()).Error())

	host := strings.TrimPrefix(api.URL, "http://")
	for _, r := range []*metrics.Registry{first, second} {
		got, ok := sample(t, r.Gatherer(), "rest_client_requests_total", map[string]string{"code": "200", "method": "GET", "host": host})
		require.True(t, ok)
		assert.GreaterOrEqual(t, got, 1.0)
		got, ok = sample(t, r.Gatherer(), "rest_client_request_duration_seconds", map[string]string{"verb": "GET", "host": host})
		require.True(t, ok)
		assert.GreaterOrEqual(t, got, 1.0)
	}

	first.Controller("scraped", 1)
	srv := httptest.NewServer(first.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, want := range []string{
		`controller_runtime_reconcile_total{controller="scraped",result="success"} 0`,
		"go_goroutines",
		"process_cpu_seconds_total",
		"rest_client_requests_total",
	} {
		assert.Contains(t, string(body), want)
	}
}

func TestRegisterer(t *testing.T) {
	r := metrics.New()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "wre_module_loads_total", Help: "test"})
	require.NoError(t, r.Registerer().Register(c))
	c.Inc()
	got, ok := sample(t, r.Gatherer(), "wre_module_loads_total", nil)
	require.True(t, ok)
	assert.Equal(t, 1.0, got)
}
