package queue

// Entries live in fixed-size chunks and refer to each other by index, not by
// pointer: a queue of a pointer-free item type (an int, say) then holds no
// pointers at all, so a large backlog costs the garbage collector nothing;
// growing never copies entries, and adding an item allocates nothing once its
// chunk exists. Index 0 means "none"; a queue holds up to 2^31-1 items.

const (
	chunkBits = 10
	chunkLen  = 1 << chunkBits

	// trimBursts is how many bursts the store looks back on before it returns
	// the chunks that none of them used.
	trimBursts = 16
)

// entry is the state of one item. It is in at most one list: its level's FIFO
// while queued, the processing list while a worker holds it.
type entry[T comparable] struct {
	item    T
	prio    Priority // the priority the item was last added with
	at      int64    // when it was queued, in ns since the queue's epoch
	added   int64    // for metrics: when it was added
	started int64    // for metrics: when a worker got it

	prev, next int32 // links in its level's FIFO or in the processing list
	lvl        int32 // 1 + index of its level in Queue.levelList; 0 when not queued
	heapPos    int32 // 1 + position in the delay heap; 0 when not delayed
	processing bool
	dirty      bool // added again while processing
}

// store allocates entries.
type store[T comparable] struct {
	chunks []*[chunkLen]entry[T]
	free   []int32
	next   int32 // the lowest index handed out since the store was last empty
	live   int
	bursts int // bursts since the last trim; see release
	peak   int // the most chunks one of them used
}

// get returns the entry at id; the pointer stays valid until release(id).
func (s *store[T]) get(id int32) *entry[T] {
	return &s.chunks[id>>chunkBits][id&(chunkLen-1)]
}

// alloc returns the index of a zeroed entry.
func (s *store[T]) alloc() int32 {
	s.live++
	if n := len(s.free); n > 0 {
		id := s.free[n-1]
		s.free = s.free[:n-1]
		return id
	}
	if s.next == 0 {
		s.next = 1
	}
	if int(s.next>>chunkBits) == len(s.chunks) {
		s.chunks = append(s.chunks, new([chunkLen]entry[T]))
	}
	id := s.next
	s.next++
	return id
}

// release zeroes the entry at id and makes it available again. When no entry
// is left, a burst has ended and the store hands out indexes from 1 again.
// Every trimBursts bursts it returns the chunks that none of them used to the
// garbage collector: the chunks of a large burst go soon after it, while a
// queue that keeps filling and emptying across a chunk boundary does not
// allocate a chunk per burst.
func (s *store[T]) release(id int32) {
	*s.get(id) = entry[T]{}
	s.live--
	if s.live > 0 {
		s.free = append(s.free, id)
		return
	}
	s.peak = max(s.peak, int((s.next-1)>>chunkBits)+1)
	s.next = 1
	s.free = s.free[:0]
	if s.bursts++; s.bursts < trimBursts {
		return
	}
	if len(s.chunks) > s.peak {
		clear(s.chunks[s.peak:])
		s.chunks = s.chunks[:s.peak]
		if cap(s.free) > 2*s.peak*chunkLen {
			s.free = nil
		}
	}
	s.bursts, s.peak = 0, 0
}

// fifo is a doubly linked list of entries: O(1) append and removal anywhere.
type fifo struct {
	head, tail int32
	n          int
}

func (s *store[T]) pushBack(l *fifo, id int32) {
	e := s.get(id)
	e.prev, e.next = l.tail, 0
	if l.tail == 0 {
		l.head = id
	} else {
		s.get(l.tail).next = id
	}
	l.tail = id
	l.n++
}

func (s *store[T]) unlink(l *fifo, id int32) {
	e := s.get(id)
	if e.prev == 0 {
		l.head = e.next
	} else {
		s.get(e.prev).next = e.next
	}
	if e.next == 0 {
		l.tail = e.prev
	} else {
		s.get(e.next).prev = e.prev
	}
	e.prev, e.next = 0, 0
	l.n--
}

// delayHeap is a binary min-heap of delayed entries, ordered by when they are
// due and then by the order they were delayed in. The keys live in the heap,
// next to each other, rather than in the entries.
type delayHeap []delayed

type delayed struct {
	readyAt int64
	seq     uint64
	id      int32
}

func (h delayHeap) less(i, j int) bool {
	if h[i].readyAt != h[j].readyAt {
		return h[i].readyAt < h[j].readyAt
	}
	return h[i].seq < h[j].seq
}

func (s *store[T]) delaySwap(h delayHeap, i, j int) {
	h[i], h[j] = h[j], h[i]
	s.get(h[i].id).heapPos = int32(i + 1)
	s.get(h[j].id).heapPos = int32(j + 1)
}

// delayPush adds d.
func (s *store[T]) delayPush(h *delayHeap, d delayed) {
	*h = append(*h, d)
	i := len(*h) - 1
	s.get(d.id).heapPos = int32(i + 1)
	s.delayUp(*h, i)
}

// delayPop removes and returns the id of the entry due first.
func (s *store[T]) delayPop(h *delayHeap) int32 {
	old := *h
	last := len(old) - 1
	s.delaySwap(old, 0, last)
	s.delayDown(old[:last], 0)
	id := old[last].id
	*h = old[:last]
	s.get(id).heapPos = 0
	return id
}

func (s *store[T]) delayUp(h delayHeap, j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		s.delaySwap(h, i, j)
		j = i
	}
}

func (s *store[T]) delayDown(h delayHeap, i int) {
	n := len(h)
	for {
		j := 2*i + 1
		if j >= n {
			return
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			return
		}
		s.delaySwap(h, i, j)
		i = j
	}
}
