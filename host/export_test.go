package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host/reconcile"
)

// SetTrapEventTimeout shortens how long m waits for the reconciled object
// when recording a trap event.
func SetTrapEventTimeout(m *Module, d time.Duration) { m.trapEventTimeout = d }

// SetCompileHook makes rt call f before each compile starts, on the
// goroutine of the Compile call that compiles.
func SetCompileHook(rt *Runtime, f func(digest string)) { rt.compileHook = f }

// CompileWaiters returns how many Compile calls have waited for the compile
// of wasm in flight; 0 when none is.
func CompileWaiters(rt *Runtime, wasm []byte) int {
	sum := sha256.Sum256(wasm)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if c, ok := rt.compiling[hex.EncodeToString(sum[:])]; ok {
		return c.waiters
	}
	return 0
}

// TestABIMarker is the marker of testABI, a second ABI version that exists
// only in tests, to prove that one Runtime drives modules of several versions
// side by side. A module of that version:
//   - exports wre_alloc and wre_free as in v1, and wre_reconcile () -> i64,
//     whose result is the requeue-after in nanoseconds (no messages at all);
//   - may import wre.call, with v1's signature, which answers 42 to anything
//     (TestABICalls counts the calls), and wre.ping () -> i32, which only this
//     version has and which answers 1000.
const TestABIMarker = "wre_abi_v99"

// TestABICalls counts the wre.call calls served by testABI.
var TestABICalls atomic.Int64

var testABI = &abiVersion{
	marker: TestABIMarker,
	exports: []export{
		{name: TestABIMarker, sig: signature{}},
		{name: "wre_alloc", sig: signature{[]api.ValueType{i32}, []api.ValueType{i32}}},
		{name: "wre_free", sig: signature{[]api.ValueType{i32}, nil}},
		{name: "wre_reconcile", sig: signature{nil, []api.ValueType{i64}}},
	},
	imports: map[string]hostImport{
		"call": {sig: abiV1.imports["call"].sig, params: []string{"a", "b", "c"},
			fn: func(_ *Runtime, _ context.Context, _ api.Module, stack []uint64) {
				TestABICalls.Add(1)
				stack[0] = 42
			}},
		"ping": {sig: signature{nil, []api.ValueType{i32}},
			fn: func(_ *Runtime, _ context.Context, _ api.Module, stack []uint64) { stack[0] = 1000 }},
	},
	alloc: "wre_alloc", free: "wre_free", reconcileExport: "wre_reconcile",
	reconcile: func(ctx context.Context, _ *Module, inst *instance, _ reconcile.Request, _ string) (abi.ReconcileResponse, error) {
		stack := []uint64{0}
		if err := inst.reconcile.CallWithStack(ctx, stack); err != nil {
			return abi.ReconcileResponse{}, err
		}
		return abi.ReconcileResponse{RequeueAfterNanos: int64(stack[0])}, nil
	},
}

// NewRuntimeWithTestABI is NewRuntime supporting testABI besides the built-in
// versions.
func NewRuntimeWithTestABI(ctx context.Context, opts RuntimeOptions) (*Runtime, error) {
	return newRuntime(ctx, opts, append(slices.Clone(builtinABIVersions), testABI))
}

// LiveMemoryRegions returns how many instances' linear memories are mapped.
func LiveMemoryRegions() int64 { return liveRegions.Load() }

// FailMemoryReservations makes every reservation of linear memory fail with
// err until the returned func is called. Its test must not run in parallel
// with others.
func FailMemoryReservations(err error) (restore func()) {
	reserve = func(uint64) ([]byte, error) { return nil, err }
	return func() { reserve = reserveRegion }
}
