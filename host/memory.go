package host

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// cappedMemory backs one instance's linear memory outside the Go heap and
// refuses to grow past limit, so memory.grow returns -1 instead of the host
// running out of memory. It reserves address space for the whole cap once
// (region), makes pages accessible only as the guest grows into them, and
// reports each growth of that committed size to onResize (for
// wre_guest_memory_bytes), so the metric is what the instance holds.
//
// The region is unmapped by release, which the instance calls from close,
// only when no guest code runs on it; Free does not unmap, because wazero
// calls it also while guest code may still run on another goroutine (a
// runtime closed under a reconcile, an abandoned runaway).
type cappedMemory struct {
	limit     uint64
	region    *region
	committed uint64
	refused   atomic.Bool // a grow past limit was refused: the guest hit the cap
	err       error       // the reservation or a commit failed
	onResize  func(delta int64)
}

var _ experimental.LinearMemory = (*cappedMemory)(nil)

// liveRegions counts the regions reserved and not yet unmapped, for tests.
var liveRegions atomic.Int64

// region is reserved address space; its pages are inaccessible until
// committed.
type region struct {
	b        []byte
	unmapped atomic.Bool
}

// reserve is reserveRegion; tests replace it to make reservations fail.
var reserve = reserveRegion

func (m *cappedMemory) allocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		b, err := reserve(min(max, m.limit))
		if err != nil {
			m.err = fmt.Errorf("reserve %d bytes of linear memory: %w", min(max, m.limit), err)
			return m
		}
		m.region = &region{b: b}
		liveRegions.Add(1)
		// A memory whose instance is never closed (a runtime closed without
		// closing its modules) is unmapped once unreachable: nothing can run
		// its guest code then.
		runtime.AddCleanup(m, func(r *region) { r.unmap() }, m.region)
		return m
	})
}

// Reallocate implements experimental.LinearMemory. Linear memory never
// shrinks, so size is never below the committed size. The returned slice has
// no capacity beyond size, so nothing reaches uncommitted pages through it.
func (m *cappedMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused.Store(true)
		return nil
	}
	if m.region == nil {
		if size == 0 && m.err == nil {
			return []byte{}
		}
		return nil
	}
	if size > m.committed {
		if err := commit(m.region.b[m.committed:size]); err != nil {
			m.err = fmt.Errorf("commit %d bytes of linear memory: %w", size-m.committed, err)
			m.refused.Store(true)
			return nil
		}
		m.onResize(int64(size - m.committed))
		m.committed = size
	}
	return m.region.b[:size:size]
}

// Free implements experimental.LinearMemory. It leaves the region mapped:
// see cappedMemory.
func (*cappedMemory) Free() {}

// release unmaps the region and reports the memory as gone, once. The caller
// guarantees that no guest code runs on the instance and that nothing reads
// its memory afterwards.
func (m *cappedMemory) release() {
	if m.region != nil && m.region.unmap() {
		m.onResize(-int64(m.committed))
	}
}

// unmap returns the region's pages and address space to the OS, once; it
// reports whether this call did.
func (r *region) unmap() bool {
	if !r.unmapped.CompareAndSwap(false, true) {
		return false
	}
	liveRegions.Add(-1)
	if err := unmapRegion(r.b); err != nil {
		// Only a bad address or length fails, which would be a bug here.
		panic(fmt.Sprintf("unmap linear memory: %v", err))
	}
	return true
}
