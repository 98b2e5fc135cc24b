package queue

// fifo is an intrusive doubly linked list of entries: O(1) append, removal
// anywhere, and no allocation.
type fifo[T comparable] struct {
	head, tail *entry[T]
	n          int
}

func (l *fifo[T]) pushBack(e *entry[T]) {
	e.prev, e.next = l.tail, nil
	if l.tail == nil {
		l.head = e
	} else {
		l.tail.next = e
	}
	l.tail = e
	l.n++
}

func (l *fifo[T]) remove(e *entry[T]) {
	if e.prev == nil {
		l.head = e.next
	} else {
		e.prev.next = e.next
	}
	if e.next == nil {
		l.tail = e.prev
	} else {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
}

// delayHeap orders delayed entries by the time they are due, then by the order
// they were delayed in. It implements container/heap.Interface.
type delayHeap[T comparable] []*entry[T]

func (h delayHeap[T]) Len() int { return len(h) }

func (h delayHeap[T]) Less(i, j int) bool {
	if h[i].readyAt != h[j].readyAt {
		return h[i].readyAt < h[j].readyAt
	}
	return h[i].seq < h[j].seq
}

func (h delayHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

// Push appends x; use heap.Push.
func (h *delayHeap[T]) Push(x any) {
	e := x.(*entry[T])
	e.heapIdx = len(*h)
	*h = append(*h, e)
}

// Pop removes the last entry; use heap.Pop.
func (h *delayHeap[T]) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.heapIdx = -1
	return e
}
