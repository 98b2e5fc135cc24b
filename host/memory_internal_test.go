package host

import (
	"context"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// growWasm is a module with memory (min 1, max 100 pages) that exports
// grow(pages i32) -> i32, which is memory.grow.
var growWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
	0x03, 0x02, 0x01, 0x00, // function 0 of type 0
	0x05, 0x04, 0x01, 0x01, 0x01, 0x64, // memory min 1 max 100
	0x07, 0x08, 0x01, 0x04, 'g', 'r', 'o', 'w', 0x00, 0x00, // export "grow"
	0x0a, 0x08, 0x01, 0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b, // local.get 0; memory.grow 0
}

const page = 64 << 10

func TestCappedMemoryGrowsToTheCapAndReportsWhatIsCommitted(t *testing.T) {
	ctx := t.Context()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	var reported int64
	mem := &cappedMemory{limit: 4 * page, onResize: func(d int64) { reported += d }}
	regions := liveRegions.Load()
	mod, err := rt.InstantiateWithConfig(experimental.WithMemoryAllocator(ctx, mem.allocator()), growWasm, wazero.NewModuleConfig())
	require.NoError(t, err)
	assert.Equal(t, regions+1, liveRegions.Load(), "one region per instance")
	assert.Len(t, mem.region.b, 4*page, "the reservation is the cap, not the module's maximum")
	assert.Equal(t, int64(page), reported, "the initial page")

	grow := mod.ExportedFunction("grow")
	base := unsafe.SliceData(mem.Reallocate(page))
	require.True(t, mod.Memory().WriteByte(page-1, 7))
	for _, pages := range []uint64{1, 2} {
		before := mod.Memory().Size()
		res, err := grow.Call(ctx, pages)
		require.NoError(t, err)
		assert.Equal(t, uint64(before/page), res[0], "memory.grow returns the old size")
	}
	assert.Equal(t, uint32(4*page), mod.Memory().Size())
	assert.Equal(t, int64(4*page), reported)
	assert.Equal(t, uint64(4*page), mem.committed)
	assert.False(t, mem.refused.Load())
	b, ok := mod.Memory().Read(0, 4*page)
	require.True(t, ok)
	assert.Equal(t, base, unsafe.SliceData(b), "growing does not move memory")
	assert.Equal(t, byte(7), b[page-1], "growing keeps contents")
	assert.Equal(t, byte(0), b[4*page-1], "new pages are zero")
	assert.Equal(t, 4*page, cap(b), "no capacity reaches uncommitted pages")
	b[4*page-1] = 9 // the last page is writable

	res, err := grow.Call(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, uint64(0xffffffff), res[0], "a grow past the cap returns -1")
	assert.True(t, mem.refused.Load(), "and is remembered, for the oom trap reason")
	assert.Equal(t, int64(4*page), reported, "a refused grow commits nothing")

	require.NoError(t, mod.Close(ctx)) // wazero calls Free
	assert.Equal(t, byte(9), b[4*page-1], "Free leaves the memory mapped: guest code may still run")
	assert.Equal(t, regions+1, liveRegions.Load())
	mem.release()
	mem.release()
	assert.Zero(t, reported, "release reports the memory gone, once")
	assert.Equal(t, regions, liveRegions.Load(), "and unmaps it")
}

func TestCappedMemoryFailures(t *testing.T) {
	mem := &cappedMemory{limit: 2 * page, onResize: func(int64) { t.Fatal("nothing is committed") }}
	defer FailMemoryReservations(assert.AnError)()
	lm := mem.allocator().Allocate(page, 100*page)
	assert.Nil(t, lm.Reallocate(page), "no memory without a reservation")
	require.ErrorIs(t, mem.err, assert.AnError)
	assert.Contains(t, mem.err.Error(), "reserve 131072 bytes of linear memory")
	mem.release() // nothing to unmap

	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	m := &Module{rt: &Runtime{wz: rt}}
	compiled, err := rt.CompileModule(ctx, growWasm)
	require.NoError(t, err)
	m.compiled = &CompiledModule{entry: &compiledEntry{wz: compiled}}
	inst := &instance{mem: &cappedMemory{limit: 2 * page, onResize: func(int64) {}}}
	_, err = m.instantiate(experimental.WithMemoryAllocator(ctx, inst.mem.allocator()), inst, wazero.NewModuleConfig())
	require.ErrorIs(t, err, assert.AnError, "wazero's panic on a missing memory becomes the reservation's error")
}
