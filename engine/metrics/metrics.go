package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/util/workqueue"
)

// Values of the result label of controller_runtime_reconcile_total.
const (
	// ResultSuccess counts reconciles that returned no error and no requeue.
	ResultSuccess = "success"
	// ResultError counts reconciles that returned an error (terminal ones and
	// panics included).
	ResultError = "error"
	// ResultRequeue is kept for controller-runtime dashboards; wre's Result has
	// no bare Requeue flag, so this series stays at zero.
	ResultRequeue = "requeue"
	// ResultRequeueAfter counts reconciles that returned Result.RequeueAfter > 0.
	ResultRequeueAfter = "requeue_after"
)

var resultLabels = []string{ResultSuccess, ResultError, ResultRequeue, ResultRequeueAfter}

// Registry holds every metric of one engine.
type Registry struct {
	reg *prometheus.Registry

	reconcileTotal    *prometheus.CounterVec
	reconcileErrors   *prometheus.CounterVec
	terminalErrors    *prometheus.CounterVec
	reconcilePanics   *prometheus.CounterVec
	reconcileTimeouts *prometheus.CounterVec
	reconcileTime     *prometheus.HistogramVec
	activeWorkers     *prometheus.GaugeVec
	maxConcurrent     *prometheus.GaugeVec
	leaderStatus      *prometheus.GaugeVec

	wqDepth           *prometheus.GaugeVec
	wqDepthByPriority *prometheus.GaugeVec
	wqAdds            *prometheus.CounterVec
	wqLatency         *prometheus.HistogramVec
	wqWorkDuration    *prometheus.HistogramVec
	wqUnfinished      *prometheus.GaugeVec
	wqLongest         *prometheus.GaugeVec
	wqRetries         *prometheus.CounterVec
}

// New returns a Registry with every engine metric, client-go's REST client
// metrics, and the Go and process collectors registered.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		reconcileTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controller_runtime_reconcile_total",
			Help: "Total number of reconciliations per controller.",
		}, []string{"controller", "result"}),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controller_runtime_reconcile_errors_total",
			Help: "Total number of reconciliation errors per controller.",
		}, []string{"controller"}),
		terminalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controller_runtime_terminal_reconcile_errors_total",
			Help: "Total number of terminal reconciliation errors per controller.",
		}, []string{"controller"}),
		reconcilePanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controller_runtime_reconcile_panics_total",
			Help: "Total number of reconciliation panics per controller.",
		}, []string{"controller"}),
		reconcileTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "controller_runtime_reconcile_timeouts_total",
			Help: "Total number of reconciliations that ran past their timeout per controller.",
		}, []string{"controller"}),
		reconcileTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "controller_runtime_reconcile_time_seconds",
			Help: "Length of time per reconciliation per controller.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
				1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60},
		}, []string{"controller"}),
		activeWorkers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "controller_runtime_active_workers",
			Help: "Number of currently used workers per controller.",
		}, []string{"controller"}),
		maxConcurrent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "controller_runtime_max_concurrent_reconciles",
			Help: "Maximum number of concurrent reconciles per controller.",
		}, []string{"controller"}),
		leaderStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leader_election_master_status",
			Help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
		}, []string{"name"}),

		wqDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_depth",
			Help: "Current depth of workqueue.",
		}, []string{"name"}),
		wqDepthByPriority: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_depth_by_priority",
			Help: "Current depth of workqueue per priority.",
		}, []string{"name", "priority"}),
		wqAdds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workqueue_adds_total",
			Help: "Total number of adds handled by workqueue.",
		}, []string{"name"}),
		wqLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workqueue_queue_duration_seconds",
			Help:    "How long in seconds an item stays in workqueue before being requested.",
			Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
		}, []string{"name"}),
		wqWorkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workqueue_work_duration_seconds",
			Help:    "How long in seconds processing an item from workqueue takes.",
			Buckets: prometheus.ExponentialBuckets(10e-9, 10, 12),
		}, []string{"name"}),
		wqUnfinished: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_unfinished_work_seconds",
			Help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. " +
				"Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
		}, []string{"name"}),
		wqLongest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workqueue_longest_running_processor_seconds",
			Help: "How many seconds has the longest running processor for workqueue been running.",
		}, []string{"name"}),
		wqRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workqueue_retries_total",
			Help: "Total number of retries handled by workqueue.",
		}, []string{"name"}),
	}
	r.reg.MustRegister(
		r.reconcileTotal, r.reconcileErrors, r.terminalErrors, r.reconcilePanics, r.reconcileTimeouts,
		r.reconcileTime, r.activeWorkers, r.maxConcurrent, r.leaderStatus,
		r.wqDepth, r.wqDepthByPriority, r.wqAdds, r.wqLatency, r.wqWorkDuration, r.wqUnfinished, r.wqLongest, r.wqRetries,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	registerRESTClientMetrics(r.reg)
	return r
}

// Gatherer returns the registry for scraping and for tests.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Registerer returns the registry so that other engine parts (the wasm host,
// the module registry) can register metrics of their own in the same place.
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Handler serves the registry in the Prometheus exposition format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg})
}

// SetLeader records whether this process holds the lease called name.
func (r *Registry) SetLeader(name string, leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	r.leaderStatus.WithLabelValues(name).Set(v)
}

// Controller creates the label series of the controller called name, with every
// result label at zero, and returns the recorder its workers report to.
func (r *Registry) Controller(name string, maxConcurrentReconciles int) *Controller {
	c := &Controller{
		errors:    r.reconcileErrors.WithLabelValues(name),
		terminal:  r.terminalErrors.WithLabelValues(name),
		panics:    r.reconcilePanics.WithLabelValues(name),
		timeouts:  r.reconcileTimeouts.WithLabelValues(name),
		duration:  r.reconcileTime.WithLabelValues(name),
		active:    r.activeWorkers.WithLabelValues(name),
		resultSet: make(map[string]prometheus.Counter, len(resultLabels)),
	}
	for _, res := range resultLabels {
		c.resultSet[res] = r.reconcileTotal.WithLabelValues(name, res)
	}
	r.maxConcurrent.WithLabelValues(name).Set(float64(maxConcurrentReconciles))
	return c
}

// RemoveController deletes every series of the controller called name and of
// its work queue (which carries the same name).
func (r *Registry) RemoveController(name string) {
	for _, res := range resultLabels {
		r.reconcileTotal.DeleteLabelValues(name, res)
	}
	for _, v := range []*prometheus.CounterVec{r.reconcileErrors, r.terminalErrors, r.reconcilePanics, r.reconcileTimeouts, r.wqAdds, r.wqRetries} {
		v.DeleteLabelValues(name)
	}
	for _, v := range []*prometheus.GaugeVec{r.activeWorkers, r.maxConcurrent, r.wqDepth, r.wqUnfinished, r.wqLongest} {
		v.DeleteLabelValues(name)
	}
	for _, v := range []*prometheus.HistogramVec{r.reconcileTime, r.wqLatency, r.wqWorkDuration} {
		v.DeleteLabelValues(name)
	}
	r.wqDepthByPriority.DeletePartialMatch(prometheus.Labels{"name": name})
}

// Controller records the reconciles of one controller. Its methods are safe for
// concurrent use by the controller's workers.
type Controller struct {
	resultSet map[string]prometheus.Counter
	errors    prometheus.Counter
	terminal  prometheus.Counter
	panics    prometheus.Counter
	timeouts  prometheus.Counter
	duration  prometheus.Observer
	active    prometheus.Gauge
}

// Reconciled records one finished reconcile: its result label (one of the
// Result constants), how long it took, and for ResultError whether the error was
// terminal.
func (c *Controller) Reconciled(result string, took time.Duration, terminal bool) {
	c.resultSet[result].Inc()
	c.duration.Observe(took.Seconds())
	if result != ResultError {
		return
	}
	c.errors.Inc()
	if terminal {
		c.terminal.Inc()
	}
}

// Panicked records a reconcile that panicked (it is also Reconciled as an error).
func (c *Controller) Panicked() { c.panics.Inc() }

// TimedOut records a reconcile that ran past its timeout.
func (c *Controller) TimedOut() { c.timeouts.Inc() }

// WorkerBusy records that a worker started (+1) or finished (-1) a reconcile.
func (c *Controller) WorkerBusy(delta int) { c.active.Add(float64(delta)) }

// PriorityDepth returns the gauge of the number of waiting items of one
// priority (its label, e.g. "low") in the queue called name; it has the
// signature of queue.Options.PriorityDepth.
func (r *Registry) PriorityDepth(name, priority string) workqueue.GaugeMetric {
	return r.wqDepthByPriority.WithLabelValues(name, priority)
}

// WorkqueueProvider returns client-go's workqueue.MetricsProvider backed by this
// registry; it creates the series of a queue when the queue is created.
func (r *Registry) WorkqueueProvider() workqueue.MetricsProvider { return workqueueProvider{r} }

type workqueueProvider struct{ r *Registry }

func (p workqueueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.r.wqDepth.WithLabelValues(name)
}

func (p workqueueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.r.wqAdds.WithLabelValues(name)
}

func (p workqueueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.r.wqLatency.WithLabelValues(name)
}

func (p workqueueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.r.wqWorkDuration.WithLabelValues(name)
}

func (p workqueueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.r.wqUnfinished.WithLabelValues(name)
}

func (p workqueueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.r.wqLongest.WithLabelValues(name)
}

func (p workqueueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.r.wqRetries.WithLabelValues(name)
}
