package queue_test

import (
	"runtime"
	"sync"
	"testing"

	"k8s.io/client-go/util/workqueue"

	"github.com/wre-dev/wre/engine/queue"
	"github.com/wre-dev/wre/test/benchcpu"
)

// benchQueue is what the benchmarks drive; add is the target's way to add an
// item, given the item's index for choosing a priority.
type benchQueue struct {
	add      func(item, i int)
	get      func() (int, bool)
	done     func(int)
	shutDown func()
}

var benchPriorities = [...]queue.Priority{queue.PriorityLow, queue.PriorityNormal, queue.PriorityHigh}

// benchTargets are compared in one run: client-go's plain queue, its
// rate-limiting queue (what controllers use), and ours with three priorities
// in use. name is "" when mp is nil: no metrics.
var benchTargets = []struct {
	name string
	new  func(name string, mp workqueue.MetricsProvider) benchQueue
}{
	{"client-go", func(name string, mp workqueue.MetricsProvider) benchQueue {
		q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[int]{Name: name, MetricsProvider: mp})
		return benchQueue{func(item, _ int) { q.Add(item) }, q.Get, q.Done, q.ShutDown}
	}},
	{"client-go-ratelimiting", func(name string, mp workqueue.MetricsProvider) benchQueue {
		q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[int](),
			workqueue.TypedRateLimitingQueueConfig[int]{Name: name, MetricsProvider: mp})
		return benchQueue{func(item, _ int) { q.Add(item) }, q.Get, q.Done, q.ShutDown}
	}},
	{"wre", func(name string, mp workqueue.MetricsProvider) benchQueue {
		q := queue.New(queue.Options[int]{Name: name, MetricsProvider: mp})
		return benchQueue{
			func(item, i int) { q.AddWithPriority(item, benchPriorities[i%len(benchPriorities)]) },
			q.Get, q.Done, q.ShutDown,
		}
	}},
}

// benchMetric is a metric that costs nothing, so that a benchmark with metrics
// measures the queue's bookkeeping for them rather than Prometheus.
type benchMetric struct{}

func (benchMetric) Inc()            {}
func (benchMetric) Dec()            {}
func (benchMetric) Set(float64)     {}
func (benchMetric) Observe(float64) {}

type benchProvider struct{}

func (benchProvider) NewDepthMetric(string) workqueue.GaugeMetric  { return benchMetric{} }
func (benchProvider) NewAddsMetric(string) workqueue.CounterMetric { return benchMetric{} }
func (benchProvider) NewLatencyMetric(string) workqueue.HistogramMetric {
	return benchMetric{}
}
func (benchProvider) NewWorkDurationMetric(string) workqueue.HistogramMetric {
	return benchMetric{}
}
func (benchProvider) NewUnfinishedWorkSecondsMetric(string) workqueue.SettableGaugeMetric {
	return benchMetric{}
}
func (benchProvider) NewLongestRunningProcessorSecondsMetric(string) workqueue.SettableGaugeMetric {
	return benchMetric{}
}
func (benchProvider) NewRetriesMetric(string) workqueue.CounterMetric { return benchMetric{} }

// runTargets runs bench for every target, without and with metrics, each from
// the same heap state, reporting allocations and the process CPU time per
// operation (cpu-ns/op, steadier than wall time on a shared machine).
func runTargets(b *testing.B, bench func(b *testing.B, q benchQueue)) {
	for _, metrics := range []struct {
		name string
		mp   workqueue.MetricsProvider
	}{{"off", nil}, {"on", benchProvider{}}} {
		for _, target := range benchTargets {
			b.Run("metrics="+metrics.name+"/target="+target.name, func(b *testing.B) {
				var name string
				if metrics.mp != nil {
					name = "bench"
				}
				q := target.new(name, metrics.mp)
				b.ReportAllocs()
				runtime.GC()
				b.ResetTimer()
				report := benchcpu.Start(b)
				bench(b, q)
				report()
			})
		}
	}
}

// BenchmarkAddGetDone measures one item's Add, Get and Done on one goroutine,
// in batches so that several items and priorities are queued at once.
func BenchmarkAddGetDone(b *testing.B) {
	const batch = 64
	runTargets(b, func(b *testing.B, q benchQueue) {
		defer q.shutDown()
		for i := 0; i < b.N; i += batch {
			n := min(batch, b.N-i)
			for j := range n {
				q.add((i+j)%4096, i+j)
			}
			for range n {
				item, _ := q.get()
				q.done(item)
			}
		}
	})
}

// BenchmarkWorkers measures throughput per item with one producer adding
// distinct items and 8 workers taking them, as a controller runs. At most
// backlog items are outstanding, so the benchmark measures a steady state
// rather than the growth of an ever longer queue.
func BenchmarkWorkers(b *testing.B) {
	const (
		workers = 8
		backlog = 1024
	)
	runTargets(b, func(b *testing.B, q benchQueue) {
		window := make(chan struct{}, backlog)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					item, shutdown := q.get()
					if shutdown {
						return
					}
					q.done(item)
					<-window
				}
			})
		}
		for i := range b.N {
			window <- struct{}{}
			q.add(i, i)
		}
		q.shutDown() // workers drain the queue, then stop
		wg.Wait()
	})
}
