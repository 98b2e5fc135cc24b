package queue

import (
	"runtime"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// DefaultAgingInterval is the AgingInterval used when Options leaves it unset:
// a PriorityLow item that has waited 100 s ranks with a PriorityNormal item that
// has just been added.
const DefaultAgingInterval = time.Second

// lockSpins is how many times lock tries the mutex before it blocks on it;
// see lock.
const lockSpins = 256

// unfinishedWorkUpdatePeriod is how often the unfinished-work gauges are
// refreshed, the same period as client-go's queue.
const unfinishedWorkUpdatePeriod = 500 * time.Millisecond

// Options configures a Queue. The zero value is a usable configuration.
type Options[T comparable] struct {
	// Name labels the queue's metrics. Defaults to "" (no metrics).
	Name string

	// RateLimiter decides the delay of AddRateLimited. Defaults to
	// DefaultRateLimiter[T]().
	RateLimiter workqueue.TypedRateLimiter[T]

	// Clock is the source of time for delays, aging and metrics. Defaults to
	// clock.RealClock{}.
	Clock clock.WithTicker

	// MetricsProvider creates the queue's metrics when Name is set. Defaults to
	// no metrics.
	MetricsProvider workqueue.MetricsProvider

	// PriorityDepth, when set together with Name, returns the gauge that counts
	// the items queued at one priority; it is called once per priority, for
	// PriorityLow, PriorityNormal and PriorityHigh when the queue is created and
	// for any other priority when it is first used, with the queue's Name and
	// the priority's String() as labels. Defaults to nil (no gauge).
	PriorityDepth func(name, priority string) workqueue.GaugeMetric

	// AgingInterval is how long a queued item waits to rise one priority unit:
	// its effective priority is its priority plus the time it has waited divided
	// by AgingInterval. Zero or negative means the default. Defaults to
	// DefaultAgingInterval (1 s: a PriorityLow item overtakes PriorityNormal
	// items that are more than 100 s younger).
	AgingInterval time.Duration
}

// DefaultRateLimiter returns client-go's default controller rate limiter: the
// larger of a per-item exponential backoff (5 ms doubling up to 1000 s) and an
// overall token bucket (10 qps, burst 100).
func DefaultRateLimiter[T comparable]() workqueue.TypedRateLimiter[T] {
	return workqueue.DefaultTypedControllerRateLimiter[T]()
}

// Queue is a priority work queue safe for concurrent use. Create it with New and
// stop it with ShutDown or ShutDownWithDrain.
type Queue[T comparable] struct {
	mu      sync.Mutex
	spin    bool      // lock spins before blocking: more than one P can run the holder
	cond    sync.Cond // signalled when an item becomes ready or on shutdown
	drained sync.Cond // signalled when a draining shutdown may be complete

	clock   clock.WithTicker
	epoch   time.Time
	aging   int64
	limiter workqueue.TypedRateLimiter[T]
	metrics *queueMetrics[T]
	name    string
	gauge   func(name, priority string) workqueue.GaugeMetric

	// items indexes every item the queue knows: queued, processing, or delayed.
	items      map[T]int32
	st         store[T]
	levels     map[Priority]*level
	levelList  []*level  // by id - 1
	std        [3]*level // PriorityLow, PriorityNormal, PriorityHigh
	active     []*level  // levels with queued items
	ready      int       // queued items, over all levels
	inFlight   int       // items being processed
	processing fifo      // the items being processed, kept only for metrics
	delayed    delayHeap
	seq        uint64

	shuttingDown bool
	drain        bool

	kick     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New returns a running Queue configured by opts.
func New[T comparable](opts Options[T]) *Queue[T] {
	if opts.RateLimiter == nil {
		opts.RateLimiter = DefaultRateLimiter[T]()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.AgingInterval <= 0 {
		opts.AgingInterval = DefaultAgingInterval
	}
	q := &Queue[T]{
		clock:   opts.Clock,
		epoch:   opts.Clock.Now(),
		aging:   int64(opts.AgingInterval),
		limiter: opts.RateLimiter,
		name:    opts.Name,
		items:   map[T]int32{},
		levels:  map[Priority]*level{},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	q.cond.L = &q.mu
	q.drained.L = &q.mu
	q.spin = runtime.GOMAXPROCS(0) > 1
	if opts.Name != "" {
		q.metrics = newQueueMetrics[T](opts.MetricsProvider, opts.Name)
		q.gauge = opts.PriorityDepth
	}
	for i, p := range []Priority{PriorityLow, PriorityNormal, PriorityHigh} {
		q.std[i] = q.level(p)
	}
	// The ticker and the timer exist before New returns, so that a test's fake
	// clock sees them before it steps.
	var ticker clock.Ticker
	if q.metrics != nil {
		ticker = q.clock.NewTicker(unfinishedWorkUpdatePeriod)
	}
	timer := q.clock.NewTimer(time.Hour)
	timer.Stop()
	q.wg.Go(func() { q.run(ticker, timer) })
	return q
}

// Add queues item at PriorityNormal; see AddWithPriority.
func (q *Queue[T]) Add(item T) {
	q.AddWithPriority(item, PriorityNormal)
}

// AddWithPriority queues item at priority p. If item is already queued it stays
// queued once, with the higher of its priorities. If a worker is processing item,
// it is queued again at p when the worker calls Done. After ShutDown it does
// nothing.
func (q *Queue[T]) AddWithPriority(item T, p Priority) {
	now := q.now() // outside the lock: reading the clock need not be serialized
	q.lock()
	defer q.mu.Unlock()
	if q.shuttingDown {
		return
	}
	id, e := q.entry(item)
	q.addLocked(id, e, p, now)
}

// AddRateLimited queues item after the delay the rate limiter gives it, at the
// priority it was last added with.
func (q *Queue[T]) AddRateLimited(item T) {
	q.AddAfter(item, q.limiter.When(item))
}

// Forget tells the rate limiter to stop tracking item, typically after it was
// processed successfully. It does not remove item from the queue.
func (q *Queue[T]) Forget(item T) {
	q.limiter.Forget(item)
}

// NumRequeues returns how many times item was rate limited since it was last
// forgotten.
func (q *Queue[T]) NumRequeues(item T) int {
	return q.limiter.NumRequeues(item)
}

// Get blocks until an item is queued or the queue shuts down, then returns the
// queued item with the highest effective priority. shutdown is true only when the
// queue is shut down and empty; otherwise the caller must call Done(item) when
// it has finished processing item.
func (q *Queue[T]) Get() (item T, shutdown bool) {
	q.lock()
	defer q.mu.Unlock()
	for {
		if len(q.delayed) > 0 {
			q.promoteLocked(q.now())
		}
		if q.ready > 0 || q.shuttingDown {
			break
		}
		q.cond.Wait()
	}
	if q.ready == 0 {
		return item, true
	}
	id := q.first()
	e := q.st.get(id)
	q.unqueue(id, e)
	e.processing = true
	q.inFlight++
	if q.metrics != nil {
		q.st.pushBack(&q.processing, id)
		q.metrics.get(e, q.now())
	}
	return e.item, false
}

// Done marks item as processed. If it was added while it was processed, it is
// queued again.
func (q *Queue[T]) Done(item T) {
	// With metrics the work ends now, before the wait for the lock; without,
	// the clock is read only to requeue a dirty item.
	var now int64
	if q.metrics != nil {
		now = q.now()
	}
	q.lock()
	defer q.mu.Unlock()
	id, ok := q.items[item]
	if !ok {
		return
	}
	e := q.st.get(id)
	if !e.processing {
		return
	}
	if q.metrics == nil && e.dirty {
		now = q.now()
	}
	if q.metrics != nil {
		q.metrics.done(e, now)
		q.st.unlink(&q.processing, id)
	}
	e.processing = false
	q.inFlight--
	if e.dirty {
		e.dirty = false
		q.enqueue(id, e, q.level(e.prio), now)
		q.cond.Signal()
	} else {
		q.release(id, e)
	}
	if q.drain && q.ready == 0 && q.inFlight == 0 {
		q.drained.Broadcast()
	}
}

// Len returns the number of queued items, not counting delayed items or items
// being processed. It is for information only: do not use it to decide whether
// to call Get.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.delayed) > 0 {
		q.promoteLocked(q.now())
	}
	return q.ready
}

// ShutDown makes the queue ignore new items and drop delayed ones. Blocked and
// later calls to Get keep returning the queued items, then report shutdown.
// It may be called more than once, and stops a ShutDownWithDrain from waiting.
func (q *Queue[T]) ShutDown() {
	q.shutDown(false)
}

// ShutDownWithDrain shuts the queue down like ShutDown, then waits until no item
// is queued or being processed. Workers must keep calling Get and Done, or it
// waits until ShutDown is called.
func (q *Queue[T]) ShutDownWithDrain() {
	q.shutDown(true)
}

// ShuttingDown reports whether ShutDown or ShutDownWithDrain was called.
func (q *Queue[T]) ShuttingDown() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.shuttingDown
}

func (q *Queue[T]) shutDown(drain bool) {
	q.stopOnce.Do(func() { close(q.stop) })
	q.wg.Wait()

	q.mu.Lock()
	defer q.mu.Unlock()
	q.shuttingDown = true
	q.drain = drain
	for _, d := range q.delayed {
		e := q.st.get(d.id)
		e.heapPos = 0
		q.release(d.id, e)
	}
	q.delayed = q.delayed[:0]
	q.cond.Broadcast()
	q.drained.Broadcast()
	for q.drain && (q.ready > 0 || q.inFlight > 0) {
		q.drained.Wait()
	}
}

// lock locks q.mu. Add, Get and Done hold it for about 100 ns, while a
// goroutine that blocks on a held sync.Mutex is parked and woken through the
// scheduler, which costs microseconds of CPU on both sides; and sync.Mutex
// spins only while its P has no other goroutine to run, which is never the
// case with more workers than Ps. So lock first retries for about as long as
// the holder needs, when another P can be running the holder. With 8 workers
// on 2 free cores (BenchmarkWorkers; figures in docs/queue.md) this took the
// CPU per item 27 % lower; on a loaded machine it changed nothing measurable.
func (q *Queue[T]) lock() {
	if q.spin {
		for range lockSpins {
			if q.mu.TryLock() {
				return
			}
		}
	}
	q.mu.Lock()
}

// now returns the clock's time in ns since the queue's epoch.
func (q *Queue[T]) now() int64 {
	return int64(q.clock.Since(q.epoch))
}

// entry returns item's entry and its id, creating one at PriorityNormal if
// there is none.
func (q *Queue[T]) entry(item T) (int32, *entry[T]) {
	if id, ok := q.items[item]; ok {
		return id, q.st.get(id)
	}
	id := q.st.alloc()
	e := q.st.get(id)
	e.item = item
	q.items[item] = id
	return id, e
}

// release forgets e, the entry at id, once nothing refers to it any more.
func (q *Queue[T]) release(id int32, e *entry[T]) {
	if e.lvl != 0 || e.processing || e.heapPos != 0 {
		return
	}
	delete(q.items, e.item)
	q.st.release(id)
}

// addLocked marks e, the entry at id, as needing processing at priority p.
func (q *Queue[T]) addLocked(id int32, e *entry[T], p Priority, now int64) {
	switch {
	case e.lvl != 0:
		// Already queued: keep the higher priority, and move the item only if
		// that ranks it earlier than the aging it has already earned.
		if p <= e.prio {
			return
		}
		e.prio = p
		if lvl := q.level(p); now-lvl.offset < e.at-q.levelList[e.lvl-1].offset {
			q.unqueue(id, e)
			q.enqueue(id, e, lvl, now)
		}
	case e.processing:
		if e.dirty {
			e.prio = max(e.prio, p)
			return
		}
		e.dirty = true
		e.prio = p
		if q.metrics != nil {
			q.metrics.add(e, now)
		}
	default:
		e.prio = p
		if q.metrics != nil {
			q.metrics.add(e, now)
		}
		q.enqueue(id, e, q.level(p), now)
		q.cond.Signal()
	}
}

func (q *Queue[T]) updateUnfinishedWork() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.metrics.updateUnfinishedWork(&q.st, q.processing.head, q.now())
}
