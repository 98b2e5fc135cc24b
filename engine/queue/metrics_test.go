package queue_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/wre-dev/wre/engine/queue"
)

// fakeMetric records what a queue reports; it serves as every metric kind.
type fakeMetric struct {
	mu       sync.Mutex
	value    float64
	observed []float64
	sets     chan float64 // every Set, in order
}

func newFakeMetric() *fakeMetric { return &fakeMetric{sets: make(chan float64, 64)} }

func (m *fakeMetric) Inc() { m.add(1) }
func (m *fakeMetric) Dec() { m.add(-1) }

func (m *fakeMetric) Set(v float64) {
	m.mu.Lock()
	m.value = v
	m.mu.Unlock()
	m.sets <- v
}

func (m *fakeMetric) Observe(v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observed = append(m.observed, v)
}

func (m *fakeMetric) add(d float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.value += d
}

func (m *fakeMetric) Value() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.value
}

func (m *fakeMetric) Observed() []float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]float64(nil), m.observed...)
}

// fakeProvider is a workqueue.MetricsProvider that keeps the metrics it made,
// keyed by kind and queue name, e.g. "depth/q".
type fakeProvider struct {
	mu      sync.Mutex
	metrics map[string]*fakeMetric
}

func newFakeProvider() *fakeProvider { return &fakeProvider{metrics: map[string]*fakeMetric{}} }

func (p *fakeProvider) get(key string) *fakeMetric {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.metrics[key]
	if !ok {
		m = newFakeMetric()
		p.metrics[key] = m
	}
	return m
}

func (p *fakeProvider) created() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.metrics)
}

func (p *fakeProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.get("depth/" + name)
}

func (p *fakeProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.get("adds/" + name)
}

func (p *fakeProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.get("latency/" + name)
}

func (p *fakeProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.get("work/" + name)
}

func (p *fakeProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.get("unfinished/" + name)
}

func (p *fakeProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.get("longest/" + name)
}

func (p *fakeProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.get("retries/" + name)
}

// priorityDepth returns a PriorityDepth option backed by p.
func (p *fakeProvider) priorityDepth(name, priority string) workqueue.GaugeMetric {
	return p.get("priority/" + name + "/" + priority)
}

// metricsQueue is what the parity test drives: client-go's queue and ours.
type metricsQueue interface {
	Add(item string)
	AddAfter(item string, d time.Duration)
	Get() (string, bool)
	Done(item string)
	ShutDown()
}

// TestMetricsMatchClientGo drives client-go's rate-limiting queue and Queue
// through the same operations on fake clocks and requires identical metrics.
func TestMetricsMatchClientGo(t *testing.T) {
	type op struct {
		do   string // add, addNow (AddAfter 0), get, done, step
		item string
	}
	ops := []op{
		{"add", "a"}, {"add", "a"}, {"add", "b"}, {"step", ""},
		{"get", "a"}, {"add", "a"}, {"step", ""}, {"done", "a"},
		{"get", "b"}, {"step", ""}, {"get", "a"}, {"done", "b"},
		{"addNow", "c"}, {"addNow", "a"}, {"step", ""}, {"done", "a"},
		{"get", "c"}, {"get", "a"}, {"step", ""}, {"done", "c"}, {"done", "a"},
	}
	run := func(t *testing.T, newQ func(fc *clocktesting.FakeClock, mp workqueue.MetricsProvider) metricsQueue) *fakeProvider {
		fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		mp := newFakeProvider()
		q := newQ(fc, mp)
		defer q.ShutDown()
		for i, o := range ops {
			switch o.do {
			case "add":
				q.Add(o.item)
			case "addNow":
				q.AddAfter(o.item, 0)
			case "get":
				item, shutdown := q.Get()
				require.False(t, shutdown)
				require.Equal(t, o.item, item, "op %d", i)
			case "done":
				q.Done(o.item)
			case "step":
				fc.Step(time.Duration(i) * 100 * time.Millisecond)
			}
		}
		return mp
	}
	want := run(t, func(fc *clocktesting.FakeClock, mp workqueue.MetricsProvider) metricsQueue {
		return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "q", MetricsProvider: mp, Clock: fc})
	})
	got := run(t, func(fc *clocktesting.FakeClock, mp workqueue.MetricsProvider) metricsQueue {
		return queue.New(queue.Options[string]{Name: "q", MetricsProvider: mp, Clock: fc})
	})
	for _, kind := range []string{"depth", "adds", "retries"} {
		assert.Equal(t, want.get(kind+"/q").Value(), got.get(kind+"/q").Value(), kind)
	}
	for _, kind := range []string{"latency", "work"} {
		require.NotEmpty(t, want.get(kind+"/q").Observed(), kind)
		assert.InDeltaSlice(t, want.get(kind+"/q").Observed(), got.get(kind+"/q").Observed(), 1e-9, kind)
	}
	assert.Equal(t, want.created(), got.created(), "metrics created")
}

func TestMetrics(t *testing.T) {
	mp := newFakeProvider()
	q, fc := newQueue(t, queue.Options[string]{Name: "q", MetricsProvider: mp})
	depth, adds, latency, work := mp.get("depth/q"), mp.get("adds/q"), mp.get("latency/q"), mp.get("work/q")

	q.Add("a")
	q.Add("a")
	assert.Equal(t, 1.0, adds.Value(), "a duplicate add is not counted")
	assert.Equal(t, 1.0, depth.Value())
	fc.Step(2 * time.Second)
	require.Equal(t, "a", get(t, q))
	assert.Equal(t, 0.0, depth.Value())
	assert.Equal(t, []float64{2}, latency.Observed())
	fc.Step(3 * time.Second)
	q.Done("a")
	assert.Equal(t, []float64{3}, work.Observed())

	q.AddAfter("b", time.Second)
	q.AddRateLimited("c")
	assert.Equal(t, 2.0, mp.get("retries/q").Value())
}

func TestUnfinishedWorkMetrics(t *testing.T) {
	mp := newFakeProvider()
	q, fc := newQueue(t, queue.Options[string]{Name: "q", MetricsProvider: mp})
	unfinished, longest := mp.get("unfinished/q"), mp.get("longest/q")
	tick := func() (float64, float64) {
		fc.Step(500 * time.Millisecond)
		return <-unfinished.sets, <-longest.sets
	}

	q.Add("a")
	q.Add("b")
	require.Equal(t, "a", get(t, q))
	u, l := tick()
	assert.Equal(t, 0.5, u)
	assert.Equal(t, 0.5, l)

	require.Equal(t, "b", get(t, q))
	u, l = tick()
	assert.Equal(t, 1.5, u, "a has run 1 s, b 0.5 s")
	assert.Equal(t, 1.0, l)

	q.Done("a")
	q.Done("b")
	u, l = tick()
	assert.Equal(t, 0.0, u)
	assert.Equal(t, 0.0, l)
}

func TestPriorityDepthMetric(t *testing.T) {
	mp := newFakeProvider()
	q, _ := newQueue(t, queue.Options[string]{Name: "q", PriorityDepth: mp.priorityDepth})
	require.Equal(t, 3, mp.created(), "gauges for the three standard priorities exist up front")
	value := func(p string) float64 { return mp.get("priority/q/" + p).Value() }

	q.AddWithPriority("l1", queue.PriorityLow)
	q.AddWithPriority("l2", queue.PriorityLow)
	q.AddWithPriority("n", queue.PriorityNormal)
	q.AddWithPriority("c", 42)
	assert.Equal(t, 2.0, value("low"))
	assert.Equal(t, 1.0, value("normal"))
	assert.Equal(t, 1.0, value("42"))

	q.AddWithPriority("l1", queue.PriorityHigh) // moves from low to high
	assert.Equal(t, 1.0, value("low"))
	assert.Equal(t, 1.0, value("high"))

	drain(t, q)
	for _, p := range []string{"low", "normal", "high", "42"} {
		assert.Equal(t, 0.0, value(p), p)
	}
	assert.Equal(t, 4, mp.created(), "no other metric without a MetricsProvider")
}

func TestNoMetricsWithoutName(t *testing.T) {
	mp := newFakeProvider()
	q, fc := newQueue(t, queue.Options[string]{MetricsProvider: mp, PriorityDepth: mp.priorityDepth})
	q.AddWithPriority("a", queue.PriorityHigh)
	q.AddAfter("b", time.Second)
	fc.Step(time.Second)
	drain(t, q)
	assert.Zero(t, mp.created())
}
