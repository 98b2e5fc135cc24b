package queue

import (
	"math"
	"time"

	"k8s.io/utils/clock"
)

// Delayed items: AddAfter keeps them in a heap by due time, and the queue's
// run goroutine adds each to its level when it is due.

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

// promoteLocked adds the delayed items that are due at now.
func (q *Queue[T]) promoteLocked(now int64) {
	for len(q.delayed) > 0 && q.delayed[0].readyAt <= now {
		id := q.st.delayPop(&q.delayed)
		e := q.st.get(id)
		q.addLocked(id, e, e.prio, now)
	}
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
