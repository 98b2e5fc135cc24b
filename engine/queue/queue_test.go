package queue_test

import (
	"math"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/wre-dev/wre/engine/queue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newQueue returns a queue on a fake clock, shut down when the test ends.
func newQueue[T comparable](t *testing.T, opts queue.Options[T]) (*queue.Queue[T], *clocktesting.FakeClock) {
	t.Helper()
	fc := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if opts.Clock == nil {
		opts.Clock = fc
	}
	q := queue.New(opts)
	t.Cleanup(q.ShutDown)
	return q, fc
}

// get takes the next item and requires that the queue is not shut down.
func get[T comparable](t *testing.T, q *queue.Queue[T]) T {
	t.Helper()
	item, shutdown := q.Get()
	require.False(t, shutdown, "queue reported shutdown")
	return item
}

// drain gets and finishes every queued item, returning them in order.
func drain[T comparable](t *testing.T, q *queue.Queue[T]) []T {
	t.Helper()
	var got []T
	for q.Len() > 0 {
		item := get(t, q)
		q.Done(item)
		got = append(got, item)
	}
	return got
}

func TestDeduplication(t *testing.T) {
	tests := []struct {
		name string
		adds []string
		want []string
	}{
		{"distinct items keep FIFO order", []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"repeated item is queued once at its first place", []string{"a", "b", "a", "a", "c", "b"}, []string{"a", "b", "c"}},
		{"single item added many times", []string{"x", "x", "x"}, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := newQueue(t, queue.Options[string]{})
			for _, item := range tt.adds {
				q.Add(item)
			}
			assert.Equal(t, len(tt.want), q.Len())
			assert.Equal(t, tt.want, drain(t, q))
		})
	}
}

func TestItemNeverOnTwoWorkers(t *testing.T) {
	q, _ := newQueue(t, queue.Options[string]{})
	q.Add("a")
	require.Equal(t, "a", get(t, q))

	// While "a" is processed, adding it again does not make it available.
	q.Add("a")
	q.AddWithPriority("a", queue.PriorityHigh)
	assert.Equal(t, 0, q.Len(), "an item being processed must not be queued")
	q.Add("b")
	assert.Equal(t, "b", get(t, q), "the second worker must get another item")
	q.Done("b")

	// Done makes it available again, exactly once.
	q.Done("a")
	assert.Equal(t, 1, q.Len())
	assert.Equal(t, "a", get(t, q))
	q.Done("a")
	assert.Equal(t, 0, q.Len())
}

func TestAddedWhileProcessingKeepsItsPriority(t *testing.T) {
	tests := []struct {
		name     string
		readds   []queue.Priority // priorities "a" is added with while processed
		others   map[string]queue.Priority
		wantNext []string
	}{
		{"re-added high overtakes queued normal", []queue.Priority{queue.PriorityHigh}, map[string]queue.Priority{"b": queue.PriorityNormal}, []string{"a", "b"}},
		{"re-added low waits behind queued normal", []queue.Priority{queue.PriorityLow}, map[string]queue.Priority{"b": queue.PriorityNormal}, []string{"b", "a"}},
		{"several re-adds keep the highest", []queue.Priority{queue.PriorityLow, queue.PriorityHigh, queue.PriorityNormal}, map[string]queue.Priority{"b": queue.PriorityNormal}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := newQueue(t, queue.Options[string]{})
			q.AddWithPriority("a", queue.PriorityNormal)
			require.Equal(t, "a", get(t, q))
			for _, p := range tt.readds {
				q.AddWithPriority("a", p)
			}
			for item, p := range tt.others {
				q.AddWithPriority(item, p)
			}
			q.Done("a")
			assert.Equal(t, tt.wantNext, drain(t, q))
		})
	}
}

func TestPriorities(t *testing.T) {
	type add struct {
		item string
		p    queue.Priority
	}
	tests := []struct {
		name string
		adds []add
		want []string
	}{
		{
			name: "high before normal before low, FIFO within a priority",
			adds: []add{{"l1", queue.PriorityLow}, {"n1", queue.PriorityNormal}, {"h1", queue.PriorityHigh}, {"l2", queue.PriorityLow}, {"n2", queue.PriorityNormal}, {"h2", queue.PriorityHigh}},
			want: []string{"h1", "h2", "n1", "n2", "l1", "l2"},
		},
		{
			name: "adding a queued item with a higher priority raises it",
			adds: []add{{"a", queue.PriorityLow}, {"b", queue.PriorityNormal}, {"a", queue.PriorityHigh}},
			want: []string{"a", "b"},
		},
		{
			name: "adding a queued item with a lower priority keeps the higher",
			adds: []add{{"a", queue.PriorityHigh}, {"b", queue.PriorityNormal}, {"a", queue.PriorityLow}},
			want: []string{"a", "b"},
		},
		{
			name: "a raised item goes behind items already at its new priority",
			adds: []add{{"a", queue.PriorityLow}, {"b", queue.PriorityNormal}, {"a", queue.PriorityNormal}, {"c", queue.PriorityNormal}},
			want: []string{"b", "a", "c"},
		},
		{
			name: "custom priorities rank by value",
			adds: []add{{"n", queue.PriorityNormal}, {"p50", 50}, {"m", -50}, {"h", queue.PriorityHigh}, {"p150", 150}},
			want: []string{"p150", "h", "p50", "n", "m"},
		},
		{
			name: "extreme priorities do not overflow",
			adds: []add{{"n", queue.PriorityNormal}, {"min", math.MinInt}, {"max", math.MaxInt}},
			want: []string{"max", "n", "min"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := newQueue(t, queue.Options[string]{})
			for _, a := range tt.adds {
				q.AddWithPriority(a.item, a.p)
			}
			assert.Equal(t, tt.want, drain(t, q))
		})
	}
}

func TestAging(t *testing.T) {
	type step struct {
		wait time.Duration // advance the clock first
		item string
		p    queue.Priority
	}
	tests := []struct {
		name  string
		aging time.Duration
		steps []step
		want  []string
	}{
		{
			name:  "low waited less than 100 intervals: fresh normal first",
			steps: []step{{0, "low", queue.PriorityLow}, {99 * time.Second, "normal", queue.PriorityNormal}},
			want:  []string{"normal", "low"},
		},
		{
			name:  "low waited exactly 100 intervals: ties, the older first",
			steps: []step{{0, "low", queue.PriorityLow}, {100 * time.Second, "normal", queue.PriorityNormal}},
			want:  []string{"low", "normal"},
		},
		{
			name:  "low waited more than 100 intervals: low first",
			steps: []step{{0, "low", queue.PriorityLow}, {101 * time.Second, "normal", queue.PriorityNormal}},
			want:  []string{"low", "normal"},
		},
		{
			name:  "low overtakes high after 200 intervals",
			steps: []step{{0, "low", queue.PriorityLow}, {201 * time.Second, "high", queue.PriorityHigh}},
			want:  []string{"low", "high"},
		},
		{
			name:  "custom interval",
			aging: 10 * time.Millisecond,
			steps: []step{{0, "low", queue.PriorityLow}, {1001 * time.Millisecond, "normal", queue.PriorityNormal}, {0, "high", queue.PriorityHigh}},
			want:  []string{"high", "low", "normal"},
		},
		{
			// "low" has earned rank 0 s + 100 s; raising it to normal at 150 s
			// would rank it at 150 s, so it keeps its earned place before "c".
			name: "raising an aged item never lowers its rank",
			steps: []step{
				{0, "low", queue.PriorityLow}, {50 * time.Second, "b", queue.PriorityNormal},
				{70 * time.Second, "c", queue.PriorityNormal}, {30 * time.Second, "low", queue.PriorityNormal},
			},
			want: []string{"b", "low", "c"},
		},
		{
			name: "raising items from the middle and the end of a priority",
			steps: []step{
				{0, "a", queue.PriorityLow}, {10 * time.Second, "b", queue.PriorityLow}, {10 * time.Second, "c", queue.PriorityLow},
				{10 * time.Second, "b", queue.PriorityHigh}, {0, "c", queue.PriorityHigh}, {0, "n", queue.PriorityNormal},
				{0, "d", queue.PriorityLow},
			},
			want: []string{"b", "c", "n", "a", "d"},
		},
		{
			name: "raising an item moves it when that ranks it earlier",
			steps: []step{
				{0, "low", queue.PriorityLow}, {10 * time.Second, "b", queue.PriorityNormal},
				{10 * time.Second, "low", queue.PriorityHigh},
			},
			want: []string{"low", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, fc := newQueue(t, queue.Options[string]{AgingInterval: tt.aging})
			for _, s := range tt.steps {
				fc.Step(s.wait)
				q.AddWithPriority(s.item, s.p)
			}
			assert.Equal(t, tt.want, drain(t, q))
		})
	}
}

// TestLowPriorityIsNotStarved feeds the queue two new normal items for every
// item a worker takes, one second apart, so normal work never runs out: a
// strict priority queue (controller-runtime's) never hands out the low item.
func TestLowPriorityIsNotStarved(t *testing.T) {
	tests := []struct {
		name      string
		aging     time.Duration
		rounds    int
		wantLowBy int // round by which the low item must be handed out; 0: never
	}{
		// The low item ranks as a normal item added 100 s later; the normal
		// items added by then (2 per second) are handed out first.
		{"default aging bounds the wait", 0, 400, 2*100 + 2},
		{"faster aging, shorter wait", 100 * time.Millisecond, 400, 2*10 + 2},
		{"aging slower than the test starves it like a strict queue", 1000 * time.Hour, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, fc := newQueue(t, queue.Options[string]{AgingInterval: tt.aging})
			q.AddWithPriority("low", queue.PriorityLow)
			next := 0
			handedAt := 0
			for round := 1; round <= tt.rounds && handedAt == 0; round++ {
				for range 2 {
					q.Add(strconv.Itoa(next))
					next++
				}
				fc.Step(time.Second)
				item := get(t, q)
				q.Done(item)
				if item == "low" {
					handedAt = round
				}
			}
			if tt.wantLowBy == 0 {
				assert.Zero(t, handedAt, "low item was handed out")
				return
			}
			require.NotZero(t, handedAt, "low item starved")
			assert.LessOrEqual(t, handedAt, tt.wantLowBy)
		})
	}
}

func TestAddAfter(t *testing.T) {
	type delayed struct {
		item string
		d    time.Duration
	}
	tests := []struct {
		name  string
		adds  []delayed
		steps []time.Duration
		want  [][]string // items that fire after each step, in order
	}{
		{
			name:  "items fire in time order at their time",
			adds:  []delayed{{"a", 3 * time.Second}, {"b", time.Second}, {"c", 2 * time.Second}, {"d", 2 * time.Second}},
			steps: []time.Duration{999 * time.Millisecond, time.Millisecond, time.Second, time.Second},
			want:  [][]string{nil, {"b"}, {"c", "d"}, {"a"}},
		},
		{
			name:  "items due together fire in time order",
			adds:  []delayed{{"a", 3 * time.Second}, {"b", time.Second}, {"c", 2 * time.Second}},
			steps: []time.Duration{5 * time.Second},
			want:  [][]string{{"b", "c", "a"}},
		},
		{
			name:  "a second, earlier AddAfter wins",
			adds:  []delayed{{"a", 5 * time.Second}, {"a", 2 * time.Second}},
			steps: []time.Duration{2 * time.Second, 3 * time.Second},
			want:  [][]string{{"a"}, nil},
		},
		{
			name:  "a second, later AddAfter is ignored",
			adds:  []delayed{{"a", time.Second}, {"a", 5 * time.Second}},
			steps: []time.Duration{time.Second, 4 * time.Second},
			want:  [][]string{{"a"}, nil},
		},
		{
			name:  "zero or negative delay adds at once",
			adds:  []delayed{{"a", 0}, {"b", -time.Second}},
			steps: []time.Duration{0},
			want:  [][]string{{"a", "b"}},
		},
		{
			name:  "huge delay does not overflow",
			adds:  []delayed{{"a", time.Duration(math.MaxInt64)}, {"b", time.Second}},
			steps: []time.Duration{time.Second, 1000 * time.Hour},
			want:  [][]string{{"b"}, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, fc := newQueue(t, queue.Options[string]{})
			for _, a := range tt.adds {
				q.AddAfter(a.item, a.d)
			}
			for i, d := range tt.steps {
				fc.Step(d)
				assert.Equal(t, tt.want[i], drain(t, q), "after step %d", i)
			}
		})
	}
}

func TestAddAfterOfQueuedItemStaysUnique(t *testing.T) {
	q, fc := newQueue(t, queue.Options[string]{})
	q.Add("a")
	q.AddAfter("a", time.Second)
	fc.Step(time.Second)
	assert.Equal(t, 1, q.Len())
	assert.Equal(t, []string{"a"}, drain(t, q))
}

func TestAddAfterWhileProcessingRunsAgainAfterDone(t *testing.T) {
	q, fc := newQueue(t, queue.Options[string]{})
	q.Add("a")
	require.Equal(t, "a", get(t, q))
	q.AddAfter("a", time.Second)
	fc.Step(time.Second)
	assert.Equal(t, 0, q.Len(), "must not be queued while processed")
	q.Done("a")
	assert.Equal(t, []string{"a"}, drain(t, q))
}

func TestAddAfterWakesBlockedGet(t *testing.T) {
	q, fc := newQueue(t, queue.Options[string]{})
	got := make(chan string)
	go func() {
		item, _ := q.Get()
		got <- item
	}()
	q.AddAfter("a", time.Second)
	fc.Step(time.Second)
	assert.Equal(t, "a", <-got)
	q.Done("a")
}

func TestEarlierAddAfterWakesBlockedGet(t *testing.T) {
	q, fc := newQueue(t, queue.Options[string]{})
	got := make(chan string)
	go func() {
		item, _ := q.Get()
		got <- item
	}()
	q.AddAfter("late", time.Hour)
	q.AddAfter("early", time.Second)
	fc.Step(time.Second)
	assert.Equal(t, "early", <-got)
	q.Done("early")
}

func TestDelayedItemKeepsLastPriority(t *testing.T) {
	tests := []struct {
		name    string
		p       queue.Priority
		requeue func(q *queue.Queue[string], item string)
		want    []string
	}{
		{"AddAfter keeps high", queue.PriorityHigh, func(q *queue.Queue[string], item string) { q.AddAfter(item, time.Second) }, []string{"x", "y"}},
		{"AddRateLimited keeps high", queue.PriorityHigh, func(q *queue.Queue[string], item string) { q.AddRateLimited(item) }, []string{"x", "y"}},
		{"AddAfter keeps low", queue.PriorityLow, func(q *queue.Queue[string], item string) { q.AddAfter(item, time.Second) }, []string{"y", "x"}},
		{"AddRateLimited keeps low", queue.PriorityLow, func(q *queue.Queue[string], item string) { q.AddRateLimited(item) }, []string{"y", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, fc := newQueue(t, queue.Options[string]{
				RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, time.Minute),
			})
			q.AddWithPriority("x", tt.p)
			require.Equal(t, "x", get(t, q))
			tt.requeue(q, "x")
			q.Done("x")
			q.Add("y") // normal, queued before x fires
			fc.Step(time.Second)
			assert.Equal(t, tt.want, drain(t, q))
		})
	}
}

func TestAddAfterOfUnknownItemIsNormal(t *testing.T) {
	q, fc := newQueue(t, queue.Options[string]{})
	q.AddAfter("x", time.Second)
	q.AddWithPriority("low", queue.PriorityLow)
	q.AddWithPriority("high", queue.PriorityHigh)
	fc.Step(time.Second)
	assert.Equal(t, []string{"high", "x", "low"}, drain(t, q))
}

func TestRateLimiting(t *testing.T) {
	q, fc := newQueue(t, queue.Options[string]{
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, time.Minute),
	})
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		q.AddRateLimited("a")
		assert.Equal(t, i+1, q.NumRequeues("a"))
		fc.Step(wait - time.Millisecond)
		assert.Equal(t, 0, q.Len(), "fired before its backoff of %v", wait)
		fc.Step(time.Millisecond)
		assert.Equal(t, []string{"a"}, drain(t, q), "not fired after its backoff of %v", wait)
	}
	q.Forget("a")
	assert.Equal(t, 0, q.NumRequeues("a"))
	q.AddRateLimited("a")
	fc.Step(time.Second)
	assert.Equal(t, []string{"a"}, drain(t, q), "Forget must reset the backoff")
}

func TestDefaultRateLimiter(t *testing.T) {
	rl := queue.DefaultRateLimiter[string]()
	assert.Equal(t, 5*time.Millisecond, rl.When("a"))
	assert.Equal(t, 10*time.Millisecond, rl.When("a"))
	assert.Equal(t, 5*time.Millisecond, rl.When("b"), "backoff is per item")
	assert.Equal(t, 2, rl.NumRequeues("a"))
	rl.Forget("a")
	assert.Equal(t, 0, rl.NumRequeues("a"))
	for range 200 {
		rl.When("a")
	}
	assert.Equal(t, 1000*time.Second, rl.When("a"), "backoff is capped")

	// A queue without a RateLimiter uses it.
	q, fc := newQueue(t, queue.Options[string]{})
	q.AddRateLimited("x")
	assert.Equal(t, 1, q.NumRequeues("x"))
	fc.Step(5 * time.Millisecond)
	assert.Equal(t, []string{"x"}, drain(t, q))
}

func TestShutDown(t *testing.T) {
	t.Run("wakes blocked Get calls", func(t *testing.T) {
		q, _ := newQueue(t, queue.Options[string]{})
		const waiters = 3
		results := make(chan bool, waiters)
		for range waiters {
			go func() {
				_, shutdown := q.Get()
				results <- shutdown
			}()
		}
		q.ShutDown()
		for range waiters {
			assert.True(t, <-results)
		}
		assert.True(t, q.ShuttingDown())
	})
	t.Run("hands out queued items first", func(t *testing.T) {
		q, _ := newQueue(t, queue.Options[string]{})
		q.Add("a")
		q.AddWithPriority("b", queue.PriorityHigh)
		assert.False(t, q.ShuttingDown())
		q.ShutDown()
		assert.Equal(t, "b", get(t, q))
		assert.Equal(t, "a", get(t, q))
		_, shutdown := q.Get()
		assert.True(t, shutdown)
	})
	t.Run("ignores adds and drops delayed items", func(t *testing.T) {
		q, fc := newQueue(t, queue.Options[string]{})
		q.AddAfter("delayed", time.Second)
		q.ShutDown()
		q.Add("a")
		q.AddAfter("b", 0)
		q.AddAfter("c", time.Second)
		fc.Step(time.Hour)
		assert.Equal(t, 0, q.Len())
		_, shutdown := q.Get()
		assert.True(t, shutdown)
	})
	t.Run("an item re-added while processed is still handed out", func(t *testing.T) {
		q, _ := newQueue(t, queue.Options[string]{})
		q.Add("a")
		require.Equal(t, "a", get(t, q))
		q.Add("a")
		q.ShutDown()
		q.Done("a")
		assert.Equal(t, "a", get(t, q))
		q.Done("a")
		_, shutdown := q.Get()
		assert.True(t, shutdown)
	})
	t.Run("can be called more than once", func(t *testing.T) {
		q, _ := newQueue(t, queue.Options[string]{})
		q.ShutDown()
		q.ShutDown()
		q.ShutDownWithDrain()
		assert.True(t, q.ShuttingDown())
	})
}

func TestShutDownWithDrain(t *testing.T) {
	t.Run("waits for in-flight items", func(t *testing.T) {
		q, _ := newQueue(t, queue.Options[string]{})
		q.Add("a")
		require.Equal(t, "a", get(t, q))
		var mu sync.Mutex
		doneCalled := false
		returned := make(chan bool)
		go func() {
			q.ShutDownWithDrain()
			mu.Lock()
			defer mu.Unlock()
			returned <- doneCalled
		}()
		for !q.ShuttingDown() {
			runtime.Gosched()
		}
		mu.Lock()
		doneCalled = true
		mu.Unlock()
		q.Done("a")
		assert.True(t, <-returned, "ShutDownWithDrain returned before Done")
	})
	t.Run("waits for queued items to be processed", func(t *testing.T) {
		q, _ := newQueue(t, queue.Options[string]{})
		for _, item := range []string{"a", "b", "c"} {
			q.Add(item)
		}
		processed := make(chan string, 3)
		go func() {
			for {
				item, shutdown := q.Get()
				if shutdown {
					close(processed)
					return
				}
				processed <- item
				q.Done(item)
			}
		}()
		q.ShutDownWithDrain()
		assert.Equal(t, 0, q.Len())
		var got []string
		for item := range processed {
			got = append(got, item)
		}
		assert.Equal(t, []string{"a", "b", "c"}, got)
	})
	t.Run("ShutDown stops the wait", func(t *testing.T) {
		q, _ := newQueue(t, queue.Options[string]{})
		q.Add("stuck")
		require.Equal(t, "stuck", get(t, q))
		returned := make(chan struct{})
		go func() {
			q.ShutDownWithDrain()
			close(returned)
		}()
		for !q.ShuttingDown() {
			runtime.Gosched()
		}
		q.ShutDown()
		<-returned
	})
}

func TestLargeBurst(t *testing.T) {
	q, _ := newQueue(t, queue.Options[int]{})
	for round := range 2 { // the second round reuses what the first released
		const n = 5000
		want := make([]int, 0, n)
		for i := range n {
			q.AddWithPriority(i, queue.PriorityLow+queue.Priority(i%2)*100)
		}
		for i := 1; i < n; i += 2 {
			want = append(want, i)
		}
		for i := 0; i < n; i += 2 {
			want = append(want, i)
		}
		require.Equal(t, n, q.Len(), "round %d", round)
		assert.Equal(t, want, drain(t, q), "round %d", round)
	}
}

func TestDoneOfUnknownItemIsIgnored(t *testing.T) {
	q, _ := newQueue(t, queue.Options[string]{})
	q.Done("never-added")
	q.Add("a")
	q.Done("a") // queued, not processing
	assert.Equal(t, 1, q.Len())
	assert.Equal(t, []string{"a"}, drain(t, q))
}

func TestRealClockDefaults(t *testing.T) {
	q := queue.New(queue.Options[int]{})
	defer q.ShutDown()
	q.Add(1)
	q.AddAfter(2, time.Millisecond) // fired by the queue's own timer
	for _, want := range []int{1, 2} {
		item, shutdown := q.Get()
		require.False(t, shutdown)
		assert.Equal(t, want, item)
		q.Done(item)
	}
}

// TestConcurrentWorkers runs workers against concurrent adders and checks that
// no item is ever processed by two workers at once and that every add is
// followed by a processing of its item.
func TestConcurrentWorkers(t *testing.T) {
	const (
		workers = 8
		adders  = 4
		adds    = 2000
		keys    = 50
	)
	q, _ := newQueue(t, queue.Options[int]{})
	var (
		mu         sync.Mutex
		inFlight   = map[int]bool{}
		pending    = map[int]bool{} // added and not processed since
		violations int
	)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				item, shutdown := q.Get()
				if shutdown {
					return
				}
				mu.Lock()
				if inFlight[item] {
					violations++
				}
				inFlight[item] = true
				delete(pending, item)
				mu.Unlock()
				runtime.Gosched()
				mu.Lock()
				inFlight[item] = false
				mu.Unlock()
				q.Done(item)
			}
		})
	}
	var addWG sync.WaitGroup
	for a := range adders {
		addWG.Go(func() {
			for i := range adds {
				item := (i*7 + a) % keys
				mu.Lock()
				pending[item] = true
				mu.Unlock()
				q.AddWithPriority(item, queue.Priority((i%3-1)*100))
			}
		})
	}
	addWG.Wait()
	q.ShutDownWithDrain()
	wg.Wait()
	assert.Zero(t, violations, "an item was processed by two workers at once")
	assert.Empty(t, pending, "an added item was never processed")
}

func TestPriorityString(t *testing.T) {
	tests := []struct {
		p    queue.Priority
		want string
	}{
		{queue.PriorityLow, "low"},
		{queue.PriorityNormal, "normal"},
		{queue.PriorityHigh, "high"},
		{42, "42"},
		{-7, "-7"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.p.String())
		})
	}
}
