package queue

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// DefaultAgingInterval is the AgingInterval used when Options leaves it unset:
// a PriorityLow item that has waited 100 s ranks with a PriorityNormal item that
// has just been added.
const DefaultAgingInterval = time.Second

// Adds without metrics share a reading of the clock for AgingInterval /
// stampFraction (see addTime), so an item ranks at most about 1/stampFraction
// of a priority unit too high. Below minStampTTL a shared reading would cost
// more in timers than it saves in clock reads, so every Add reads the clock.
const (
	stampFraction = 1000
	minStampTTL   = 100 * time.Microsecond
)

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

	// Clock is the source of time for delays, aging and metrics. If it also
	// has AfterFunc (clock.RealClock and the fake clock of k8s.io/utils do),
	// Adds that come less than AgingInterval/1000 apart share one reading of
	// it when there are no metrics. Defaults to clock.RealClock{}.
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
	spin    bool      // lock spins before blocking: more than one P can run the holder
	cond    sync.Cond // signalled when an item becomes ready or on shutdown
	drained sync.Cond // signalled when a draining shutdown may be complete

	clock   clock.WithTicker
	epoch   time.Time
	aging   int64
	limiter workqueue.TypedRateLimiter[T]
	metrics *queueMetrics[T]
	name    string
	gauge   func(name string, p Priority) workqueue.GaugeMetric

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

	// Adds without metrics share readings of the clock; see addTime.
	stamp      atomic.Int64  // 1 + the shared reading; 0 when there is none
	stampTTL   time.Duration // how long a reading is shared; 0: never
	lastRead   int64         // the latest reading an Add took from the clock
	afterFunc  func(time.Duration, func()) clock.Timer
	stampTimer clock.Timer // ends the sharing; created on first use

	shuttingDown bool
	drain        bool

	kick     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// level is the FIFO of the items queued at one priority. Its items were queued
// in time order, so its head is the one that has waited longest and ranks first
// within the level: Get compares only the heads of the levels.
type level struct {
	fifo
	id     int32 // 1 + index in Queue.levelList
	prio   Priority
	offset int64 // prio × aging interval: an item's rank key is at - offset
	headAt int64 // at of the head, when the level is not empty
	tailAt int64 // at of the tail, when the level is not empty
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
	if c, ok := opts.Clock.(clock.WithDelayedExecution); ok && q.metrics == nil {
		if ttl := opts.AgingInterval / stampFraction; ttl >= minStampTTL {
			q.stampTTL, q.afterFunc = ttl, c.AfterFunc
			q.lastRead = -2 * int64(ttl)
		}
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
	now, read := q.addTime() // outside the lock: reading the clock need not be serialized
	q.lock()
	defer q.mu.Unlock()
	if q.shuttingDown {
		return
	}
	if read && q.stampTTL > 0 {
		q.shareLocked(now)
	}
	id, e := q.entry(item)
	q.addLocked(id, e, p, now)
}

// AddAfter queues item after d, at the priority it was last added with
// (PriorityNormal if the queue does not know it). If item is already delayed,
// the earlier of the two times wins. A d of zero or less adds it at once.
func (q *Queue[T]) AddAfter(item T, d time.Duration) {
	now := q.now()
	q.lock()
	defer q.mu.Unlock()
	if q.shuttingDown {
		return
	}
	if q.metrics != nil {
		q.metrics.retries.Inc()
	}
	id, e := q.entry(item)
	if d <= 0 {
		q.addLocked(id, e, e.prio, now)
		return
	}
	readyAt := int64(math.MaxInt64)
	if int64(d) < math.MaxInt64-now {
		readyAt = now + int64(d)
	}
	switch {
	case e.heapPos == 0:
		q.st.delayPush(&q.delayed, delayed{readyAt: readyAt, seq: q.seq, id: id})
		q.seq++
	case readyAt < q.delayed[e.heapPos-1].readyAt:
		q.delayed[e.heapPos-1].readyAt = readyAt
		q.st.delayUp(q.delayed, int(e.heapPos-1))
	}
	if e.heapPos == 1 {
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
	if q.stampTimer != nil {
		q.stampTimer.Stop()
	}
	q.stamp.Store(0)
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

// addTime returns the time at which AddWithPriority queues its item, and
// whether it read it from the clock. Reading the clock can cost as much as the
// rest of an Add (about 45 ns on a VM's kvm-clock; client-go's queue reads no
// clock without metrics), while an item's rank needs its time only to a small
// fraction of AgingInterval. So Adds that come less than stampTTL apart share
// one reading, which a timer withdraws after stampTTL: their times are early by
// at most stampTTL (plus the timer's lateness), which ranks an item at most
// 1/stampFraction of a priority unit too high. Sparser Adds read the clock and
// arm no timer. With metrics every Add reads the clock, as client-go's
// latency metric starts at the exact time of the Add.
func (q *Queue[T]) addTime() (now int64, read bool) {
	if s := q.stamp.Load(); s != 0 {
		return s - 1, false
	}
	return q.now(), true
}

// shareLocked lets the Adds of the next stampTTL use now, the reading an Add
// has just taken, if the previous reading was less than two stampTTLs before
// it. The timer is armed only while a reading is shared, so it fires at most
// once per stampTTL and not at all while Adds are sparse.
func (q *Queue[T]) shareLocked(now int64) {
	prev := q.lastRead
	q.lastRead = now
	if now-prev >= 2*int64(q.stampTTL) || q.stamp.Load() != 0 {
		return
	}
	q.stamp.Store(now + 1)
	if q.stampTimer == nil {
		q.stampTimer = q.afterFunc(q.stampTTL, q.expireStamp)
	} else {
		resetTimer(q.stampTimer, q.stampTTL)
	}
}

// expireStamp stops Adds from sharing the reading of the clock they share.
func (q *Queue[T]) expireStamp() {
	q.stamp.Store(0)
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

// promoteLocked adds the delayed items that are due at now.
func (q *Queue[T]) promoteLocked(now int64) {
	for len(q.delayed) > 0 && q.delayed[0].readyAt <= now {
		id := q.st.delayPop(&q.delayed)
		e := q.st.get(id)
		q.addLocked(id, e, e.prio, now)
	}
}

// level returns the level of priority p, creating it on first use.
func (q *Queue[T]) level(p Priority) *level {
	switch p {
	case PriorityLow:
		if q.std[0] != nil {
			return q.std[0]
		}
	case PriorityNormal:
		if q.std[1] != nil {
			return q.std[1]
		}
	case PriorityHigh:
		if q.std[2] != nil {
			return q.std[2]
		}
	}
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
	l := &level{id: int32(len(q.levelList) + 1), prio: p, offset: offset, index: -1}
	if q.gauge != nil {
		l.depth = q.gauge(q.name, p)
	}
	q.levels[p] = l
	q.levelList = append(q.levelList, l)
	return l
}

// enqueue appends e, the entry at id, to lvl, as queued at now.
func (q *Queue[T]) enqueue(id int32, e *entry[T], lvl *level, now int64) {
	if lvl.n == 0 {
		lvl.headAt = now
		lvl.index = len(q.active)
		q.active = append(q.active, lvl)
	} else {
		// now was read outside the lock and may trail the tail by a little;
		// keep the level in time order.
		now = max(now, lvl.tailAt)
	}
	lvl.tailAt = now
	e.lvl = lvl.id
	e.at = now
	q.st.pushBack(&lvl.fifo, id)
	q.ready++
	if lvl.depth != nil {
		lvl.depth.Inc()
	}
}

// unqueue removes e, the entry at id, from its level.
func (q *Queue[T]) unqueue(id int32, e *entry[T]) {
	lvl := q.levelList[e.lvl-1]
	wasHead, wasTail := e.prev == 0, e.next == 0
	q.st.unlink(&lvl.fifo, id)
	e.lvl = 0
	q.ready--
	switch {
	case lvl.n == 0:
		last := q.active[len(q.active)-1]
		last.index = lvl.index
		q.active[lvl.index] = last
		q.active = q.active[:len(q.active)-1]
		lvl.index = -1
	case wasHead:
		lvl.headAt = q.st.get(lvl.head).at
	case wasTail:
		lvl.tailAt = q.st.get(lvl.tail).at
	}
	if lvl.depth != nil {
		lvl.depth.Dec()
	}
}

// first returns the id of the queued item with the highest effective
// priority. Ordering by at - offset is ordering by priority + waited/aging, and
// it does not change as time passes, so only the head of each level needs to
// be looked at.
func (q *Queue[T]) first() int32 {
	best := q.active[0]
	for _, lvl := range q.active[1:] {
		k, bk := lvl.headAt-lvl.offset, best.headAt-best.offset
		if k < bk || (k == bk && lvl.headAt < best.headAt) {
			best = lvl
		}
	}
	return best.head
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
	q.metrics.updateUnfinishedWork(&q.st, q.processing.head, q.now())
}
