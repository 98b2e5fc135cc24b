package queue_test

import (
	"fmt"
	"sync"
	"testing"

	"k8s.io/client-go/util/workqueue"

	"github.com/wre-dev/wre/engine/queue"
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
// in use.
var benchTargets = []struct {
	name string
	new  func() benchQueue
}{
	{"client-go", func() benchQueue {
		q := workqueue.NewTyped[int]()
		return benchQueue{func(item, _ int) { q.Add(item) }, q.Get, q.Done, q.ShutDown}
	}},
	{"client-go-ratelimiting", func() benchQueue {
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[int]())
		return benchQueue{func(item, _ int) { q.Add(item) }, q.Get, q.Done, q.ShutDown}
	}},
	{"wre", func() benchQueue {
		q := queue.New(queue.Options[int]{})
		return benchQueue{
			func(item, i int) { q.AddWithPriority(item, benchPriorities[i%len(benchPriorities)]) },
			q.Get, q.Done, q.ShutDown,
		}
	}},
}

// reportCPU adds the process CPU time per operation as the metric cpu-ns/op;
// call the function it returns when the timed part ends.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if used := cpuTime() - start; used > 0 {
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkAddGetDone measures one item's Add, Get and Done on one goroutine,
// in batches so that several items and priorities are queued at once.
func BenchmarkAddGetDone(b *testing.B) {
	const batch = 64
	for _, target := range benchTargets {
		b.Run("target="+target.name, func(b *testing.B) {
			q := target.new()
			defer q.shutDown()
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				q.add(i%4096, i)
				i++
				if i%batch == 0 {
					for range batch {
						item, _ := q.get()
						q.done(item)
					}
				}
			}
			for range i % batch {
				item, _ := q.get()
				q.done(item)
			}
		})
	}
}

// BenchmarkWorkers measures throughput per item with one producer adding
// distinct items and 8 workers taking them, as a controller runs.
func BenchmarkWorkers(b *testing.B) {
	const workers = 8
	for _, target := range benchTargets {
		b.Run(fmt.Sprintf("target=%s/workers=%d", target.name, workers), func(b *testing.B) {
			q := target.new()
			b.ReportAllocs()
			defer reportCPU(b)()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for {
						item, shutdown := q.get()
						if shutdown {
							return
						}
						q.done(item)
					}
				})
			}
			for i := range b.N {
				q.add(i, i)
			}
			q.shutDown() // workers drain the queue, then stop
			wg.Wait()
		})
	}
}
