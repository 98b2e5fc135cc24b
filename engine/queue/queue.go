package queue

import (
	"container/heap"
	"math"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// DefaultAgingInterval is the AgingInterval used when Options leaves it unset:
// a PriorityLow item that has waited 100 s ranks with a PriorityNormal item that
// has just been added.
const DefaultAgingInterval = time.Second

// unfinishedWorkUpdatePeriod is how often the unfinished-work gauges are
// refreshed, the same period as client-go's queue.
const unfinishedWorkUpdatePeriod = 500 * time.Millisecond

// maxFreeEntries bounds the entries kept for reuse, so a burst does not pin
// its memory forever.
const maxFreeEntries = 1024

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
	// for any other priority when it is first used. Defaults to nil (no gauge).
	PriorityDepth func(name string, p Priority) workqueue.GaugeMetric

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
	cond    sync.Cond // signalled when an item becomes ready or on shutdown
	drained sync.Cond // signalled when a draining shutdown may be complete

	clock   clock.WithTicker
	epoch   time.Time
	aging   int64
	limiter workqueue.TypedRateLimiter[T]
	metrics *queueMetrics[T]
	name    string
	gauge   func(name string, p Priority) workqueue.GaugeMetric

	// items holds every item the queue knows: queued, processing, or delayed.
	items      map[T]*entry[T]
	levels     map[Priority]*level[T]
	active     []*level[T] // levels with queued items
	ready      int         // queued items, over all levels
	processing fifo[T]
	delayed    delayHeap[T]
	seq        uint64 // orders delayed items that are due at the same time
	free       []*entry[T]

	shuttingDown bool
	drain        bool

	kick     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// entry is the state of one item. It is in at most one list: its level's FIFO
// while queued, the processing list while a worker holds it.
type entry[T comparable] struct {
	item       T
	prio       Priority  // the priority the item was last added with
	lvl        *level[T] // the level it is queued in; nil when not queued
	prev, next *entry[T]
	at         int64 // when it was queued, in ns since the queue's epoch
	processing bool
	dirty      bool // added again while processing

	heapIdx int // index in the delayed heap; -1 when not delayed
	readyAt int64
	seq     uint64

	added, started int64 // for metrics: when it was added, when a worker got it
}

// level is the FIFO of the items queued at one priority. Its items were queued
// in time order, so its head is the one that has waited longest and ranks first
// within the level: Get compares only the heads of the levels.
type level[T comparable] struct {
	fifo[T]
	prio   Priority
	offset int64 // prio × aging interval: an item's rank key is at - offset
	depth  workqueue.GaugeMetric
	index  int // position in Queue.active; -1 when empty
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
		items:   map[T]*entry[T]{},
		levels:  map[Priority]*level[T]{},
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	q.cond.L = &q.mu
	q.drained.L = &q.mu
	if opts.Name != "" {
		q.metrics = newQueueMetrics[T](opts.MetricsProvider, opts.Name)
		q.gauge = opts.PriorityDepth
	}
	for _, p := range []Priority{PriorityLow, PriorityNormal, PriorityHigh} {
		q.level(p)
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
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shuttingDown {
		return
	}
	q.addLocked(q.entry(item), p, q.now())
}

// AddAfter queues item after d, at the priority it was last added with
// (PriorityNormal if the queue does not know it). If item is already delayed,
// the earlier of the two times wins. A d of zero or less adds it at once.
func (q *Queue[T]) AddAfter(item T, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shuttingDown {
		return
	}
	if q.metrics != nil {
		q.metrics.retries.Inc()
	}
	e := q.entry(item)
	now := q.now()
	if d <= 0 {
		q.addLocked(e, e.prio, now)
		return
	}
	readyAt := int64(math.MaxInt64)
	if int64(d) < math.MaxInt64-now {
		readyAt = now + int64(d)
	}
	switch {
	case e.heapIdx < 0:
		e.readyAt = readyAt
		e.seq = q.seq
		q.seq++
		heap.Push(&q.delayed, e)
	case readyAt < e.readyAt:
		e.readyAt = readyAt
		heap.Fix(&q.delayed, e.heapIdx)
	}
	if e.heapIdx == 0 {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
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
	q.mu.Lock()
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
	e := q.first()
	q.unqueue(e)
	e.processing = true
	q.processing.pushBack(e)
	if q.metrics != nil {
		q.metrics.get(e, q.now())
	}
	return e.item, false
}

// Done marks item as processed. If it was added while it was processed, it is
// queued again.
func (q *Queue[T]) Done(item T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.items[item]
	if e == nil || !e.processing {
		return
	}
	var now int64
	if q.metrics != nil || e.dirty {
		now = q.now()
	}
	if q.metrics != nil {
		q.metrics.done(e, now)
	}
	e.processing = false
	q.processing.remove(e)
	if e.dirty {
		e.dirty = false
		q.enqueue(e, q.level(e.prio), now)
		q.cond.Signal()
	} else {
		q.release(e)
	}
	if q.drain && q.ready == 0 && q.processing.n == 0 {
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
	for _, e := range q.delayed {
		e.heapIdx = -1
		q.release(e)
	}
	q.delayed = q.delayed[:0]
	q.cond.Broadcast()
	q.drained.Broadcast()
	for q.drain && (q.ready > 0 || q.processing.n > 0) {
		q.drained.Wait()
	}
}

// now returns the clock's time in ns since the queue's epoch.
func (q *Queue[T]) now() int64 {
	return int64(q.clock.Since(q.epoch))
}

// entry returns item's entry, creating one at PriorityNormal if there is none.
func (q *Queue[T]) entry(item T) *entry[T] {
	if e := q.items[item]; e != nil {
		return e
	}
	var e *entry[T]
	if n := len(q.free); n > 0 {
		e = q.free[n-1]
		q.free = q.free[:n-1]
	} else {
		e = &entry[T]{}
	}
	*e = entry[T]{item: item, heapIdx: -1}
	q.items[item] = e
	return e
}

// release forgets e once nothing refers to it any more.
func (q *Queue[T]) release(e *entry[T]) {
	if e.lvl != nil || e.processing || e.heapIdx >= 0 {
		return
	}
	delete(q.items, e.item)
	*e = entry[T]{}
	if len(q.free) < maxFreeEntries {
		q.free = append(q.free, e)
	}
}

// addLocked marks e as needing processing at priority p.
func (q *Queue[T]) addLocked(e *entry[T], p Priority, now int64) {
	switch {
	case e.lvl != nil:
		// Already queued: keep the higher priority, and move the item only if
		// that ranks it earlier than the aging it has already earned.
		if p <= e.prio {
			return
		}
		e.prio = p
		if lvl := q.level(p); now-lvl.offset < e.at-e.lvl.offset {
			q.unqueue(e)
			q.enqueue(e, lvl, now)
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
		q.enqueue(e, q.level(p), now)
		q.cond.Signal()
	}
}

// promoteLocked adds the delayed items that are due at now.
func (q *Queue[T]) promoteLocked(now int64) {
	for len(q.delayed) > 0 && q.delayed[0].readyAt <= now {
		e := heap.Pop(&q.delayed).(*entry[T])
		q.addLocked(e, e.prio, now)
	}
}

// level returns the level of priority p, creating it on first use.
func (q *Queue[T]) level(p Priority) *level[T] {
	if l := q.levels[p]; l != nil {
		return l
	}
	// Saturate so that at - offset cannot overflow for any realistic clock.
	const limit = int64(1) << 61
	offset := limit
	if p64 := int64(p); p64 > -limit/q.aging && p64 < limit/q.aging {
		offset = p64 * q.aging
	} else if p < 0 {
		offset = -limit
	}
	l := &level[T]{prio: p, offset: offset, index: -1}
	if q.gauge != nil {
		l.depth = q.gauge(q.name, p)
	}
	q.levels[p] = l
	return l
}

// enqueue appends e to lvl, as queued at now.
func (q *Queue[T]) enqueue(e *entry[T], lvl *level[T], now int64) {
	e.lvl = lvl
	e.at = now
	lvl.pushBack(e)
	q.ready++
	if lvl.index < 0 {
		lvl.index = len(q.active)
		q.active = append(q.active, lvl)
	}
	if lvl.depth != nil {
		lvl.depth.Inc()
	}
}

// unqueue removes e from its level.
func (q *Queue[T]) unqueue(e *entry[T]) {
	lvl := e.lvl
	lvl.remove(e)
	e.lvl = nil
	q.ready--
	if lvl.n == 0 {
		last := q.active[len(q.active)-1]
		last.index = lvl.index
		q.active[lvl.index] = last
		q.active = q.active[:len(q.active)-1]
		lvl.index = -1
	}
	if lvl.depth != nil {
		lvl.depth.Dec()
	}
}

// first returns the queued item with the highest effective priority. Ordering
// by at - offset is ordering by priority + waited/aging, and it does not change
// as time passes, so only the head of each level needs to be looked at.
func (q *Queue[T]) first() *entry[T] {
	best := q.active[0].head
	for _, lvl := range q.active[1:] {
		e := lvl.head
		k, bk := e.at-lvl.offset, best.at-best.lvl.offset
		if k < bk || (k == bk && e.at < best.at) {
			best = e
		}
	}
	return best
}

// run fires delayed items and refreshes the unfinished-work metrics until the
// queue stops.
func (q *Queue[T]) run(ticker clock.Ticker, timer clock.Timer) {
	defer timer.Stop()
	var tick <-chan time.Time
	if ticker != nil {
		defer ticker.Stop()
		tick = ticker.C()
	}
	for {
		var fire <-chan time.Time
		if next, ok := q.promoteDue(); ok {
			resetTimer(timer, time.Duration(next-q.now()))
			if q.now() >= next {
				continue // the clock passed next while the timer was armed
			}
			fire = timer.C()
		}
		select {
		case <-q.stop:
			return
		case <-q.kick:
		case <-fire:
		case <-tick:
			q.updateUnfinishedWork()
		}
	}
}

// promoteDue adds the delayed items that are due and returns when the next one
// is.
func (q *Queue[T]) promoteDue() (next int64, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.delayed) == 0 {
		return 0, false
	}
	now := q.now()
	q.promoteLocked(now)
	if len(q.delayed) == 0 {
		return 0, false
	}
	return q.delayed[0].readyAt, true
}

// resetTimer re-arms t to fire after d, dropping a tick it may have left
// unread (a fake clock blocks on a full timer channel).
func resetTimer(t clock.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C():
		default:
		}
	}
	t.Reset(d)
}

func (q *Queue[T]) updateUnfinishedWork() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.metrics.updateUnfinishedWork(&q.processing, q.now())
}
