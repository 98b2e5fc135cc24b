package host

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// cappedMemory backs one instance's linear memory and refuses to grow past
// limit, so memory.grow returns -1 instead of the host running out of memory.
// It reports size changes to onResize (for wre_guest_memory_bytes).
type cappedMemory struct {
	limit    uint64
	buf      []byte
	refused  atomic.Bool // a grow past limit was refused: the guest hit the cap
	released atomic.Bool
	onResize func(delta int64)
}

var _ experimental.LinearMemory = (*cappedMemory)(nil)

func (m *cappedMemory) allocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, _ uint64) experimental.LinearMemory {
		m.buf = make([]byte, 0, min(capacity, m.limit))
		return m
	})
}

// Reallocate implements experimental.LinearMemory. Linear memory never
// shrinks, so size is never below len(m.buf).
func (m *cappedMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused.Store(true)
		return nil
	}
	old := len(m.buf)
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
	} else {
		// Grow geometrically (bounded by the cap) so that a guest growing page
		// by page does not copy its memory on every page.
		next := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.limit))
		copy(next, m.buf)
		m.buf = next
	}
	m.onResize(int64(len(m.buf) - old))
	return m.buf
}

// Free implements experimental.LinearMemory.
func (m *cappedMemory) Free() { m.release() }

// release reports the memory as gone, once; wazero calls Free only on some
// close paths, so the instance calls release as well when it is discarded.
func (m *cappedMemory) release() {
	if m.released.CompareAndSwap(false, true) {
		m.onResize(-int64(len(m.buf)))
		m.buf = nil
	}
}
