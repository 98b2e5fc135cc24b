package queue

import "k8s.io/client-go/util/workqueue"

// The ordering half of the queue: the levels of queued items, one FIFO per
// priority, and the aging rule that ranks them (an item's effective priority
// is its priority plus the time it has waited divided by the aging interval).
// The bookkeeping half (which items exist, which are being processed or must
// be processed again) is in queue.go, delays in delay.go.

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
		l.depth = q.gauge(q.name, p.String())
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
