package queue

import (
	"time"

	"k8s.io/client-go/util/workqueue"
)

// queueMetrics reports client-go's workqueue metrics. Its methods mirror
// client-go's defaultQueueMetrics so that dashboards read both alike; the add
// and start times live in the entries instead of maps. Times are ns since the
// queue's epoch; the caller holds the queue's lock.
type queueMetrics[T comparable] struct {
	depth          workqueue.GaugeMetric
	adds           workqueue.CounterMetric
	latency        workqueue.HistogramMetric
	workDuration   workqueue.HistogramMetric
	unfinishedWork workqueue.SettableGaugeMetric
	longestRunning workqueue.SettableGaugeMetric
	retries        workqueue.CounterMetric
}

// newQueueMetrics returns the metrics of queue name, or nil when mp is nil.
func newQueueMetrics[T comparable](mp workqueue.MetricsProvider, name string) *queueMetrics[T] {
	if mp == nil {
		return nil
	}
	return &queueMetrics[T]{
		depth:          mp.NewDepthMetric(name),
		adds:           mp.NewAddsMetric(name),
		latency:        mp.NewLatencyMetric(name),
		workDuration:   mp.NewWorkDurationMetric(name),
		unfinishedWork: mp.NewUnfinishedWorkSecondsMetric(name),
		longestRunning: mp.NewLongestRunningProcessorSecondsMetric(name),
		retries:        mp.NewRetriesMetric(name),
	}
}

// add records that e joined client-go's dirty set (queued, or added again while
// processing).
func (m *queueMetrics[T]) add(e *entry[T], now int64) {
	m.adds.Inc()
	m.depth.Inc()
	e.added = now
}

// get records that a worker got e.
func (m *queueMetrics[T]) get(e *entry[T], now int64) {
	m.depth.Dec()
	e.started = now
	m.latency.Observe(seconds(now - e.added))
}

// done records that a worker finished e.
func (m *queueMetrics[T]) done(e *entry[T], now int64) {
	m.workDuration.Observe(seconds(now - e.started))
}

// updateUnfinishedWork sets the total and the longest time the items being
// processed, the list starting at head, have been running.
func (m *queueMetrics[T]) updateUnfinishedWork(st *store[T], head int32, now int64) {
	var total, oldest float64
	for id := head; id != 0; id = st.get(id).next {
		age := seconds(now - st.get(id).started)
		total += age
		oldest = max(oldest, age)
	}
	m.unfinishedWork.Set(total)
	m.longestRunning.Set(oldest)
}

func seconds(ns int64) float64 {
	return time.Duration(ns).Seconds()
}
