package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// instance is one instantiated guest. It is not safe for concurrent use: the
// pool hands it to one reconcile at a time.
type instance struct {
	mod                    api.Module
	alloc, free, reconcile api.Function
	mem                    *cappedMemory
	stdout, stderr         *lineWriter
	uses                   int
	lastUsed               time.Time
	// abandoned waits for the guest code of a runaway instance (callGuest)
	// to return and returns its error; nil for every other instance.
	abandoned   func() error
	abandonedAt time.Time
}

// callKey is the context key of the *callState of a running guest call.
type callKey struct{}

// callState travels in the context of every guest call, so host functions know
// which module and reconcile they serve.
type callState struct {
	m           *Module
	inst        *instance
	log         logr.Logger
	reconciling bool // false during _initialize: only config and log are served
	ns, name    string
}

func stateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(callKey{}).(*callState)
	return st
}

// protocolError is a guest violation of the ABI that makes its instance unusable.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "ABI violation: " + e.msg }

// newInstance instantiates the module and runs _initialize under ctx. On
// error it returns what must be dropped: nil, or an instance that failed to
// initialize (possibly abandoned while running).
func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	inst := &instance{
		mem: &cappedMemory{limit: m.opts.MemoryLimitBytes, onResize: func(d int64) {
			m.rt.opts.Metrics.GuestMemory.WithLabelValues(m.opts.Name).Add(float64(d))
		}},
		stdout: &lineWriter{},
		stderr: &lineWriter{},
	}
	inst.stdout.emit = func(line string) { m.log.Info(line, "stream", "stdout", "reconcileID", inst.stdout.reconcileID.Load()) }
	inst.stderr.emit = func(line string) {
		m.log.Error(nil, line, "stream", "stderr", "reconcileID", inst.stderr.reconcileID.Load())
	}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(m.opts.Name).
		WithStdout(inst.stdout).
		WithStderr(inst.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStartFunctions()
	ctx = experimental.WithMemoryAllocator(ctx, inst.mem.allocator())
	ctx = context.WithValue(ctx, callKey{}, &callState{m: m, inst: inst, log: m.log})
	mod, err := m.rt.wz.InstantiateModule(ctx, m.compiled.entry.wz, cfg)
	if err != nil {
		inst.mem.release()
		return nil, err
	}
	inst.mod = mod
	inst.alloc = mod.ExportedFunction(abi.ExportAlloc)
	inst.free = mod.ExportedFunction(abi.ExportFree)
	inst.reconcile = mod.ExportedFunction(abi.ExportReconcile)
	if m.compiled.entry.hasInit {
		initialize := mod.ExportedFunction("_initialize")
		if _, err := callGuest(m, ctx, inst, func() ([]uint64, error) { return initialize.Call(ctx) }); err != nil {
			return inst, err
		}
	}
	return inst, nil
}

func (inst *instance) close(ctx context.Context) {
	if inst.mod != nil {
		_ = inst.mod.Close(context.WithoutCancel(ctx))
	}
	inst.stdout.Flush()
	inst.stderr.Flush()
	inst.mem.release()
}

// write copies data into memory the guest allocates with wre_alloc and returns
// its packed (ptr, len). A broken allocator panics with a *protocolError, which
// wazero turns into an error of the running guest call.
func (inst *instance) write(ctx context.Context, data []byte) uint64 {
	stack := []uint64{api.EncodeU32(uint32(len(data)))}
	if err := inst.alloc.CallWithStack(ctx, stack); err != nil {
		panic(err)
	}
	ptr := api.DecodeU32(stack[0])
	if ptr == 0 && len(data) > 0 {
		panic(&protocolError{fmt.Sprintf("wre_alloc(%d) returned 0", len(data))})
	}
	if !inst.mod.Memory().Write(ptr, data) {
		panic(&protocolError{fmt.Sprintf("wre_alloc(%d) returned %#x, outside memory of %d bytes", len(data), ptr, inst.mod.Memory().Size())})
	}
	return abi.Pack(ptr, uint32(len(data)))
}

// read returns a view of guest memory, or false when the range is outside it.
func read(mod api.Module, ptr, n uint32) ([]byte, bool) {
	return mod.Memory().Read(ptr, n)
}

// classify names why a guest call failed, for wre_guest_traps_total.
func (inst *instance) classify(err error) string {
	var exit *sys.ExitError
	var proto *protocolError
	switch {
	case errors.As(err, &proto):
		return TrapProtocol
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded:
		return TrapTimeout
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled:
		return TrapCanceled
	case inst.mem.refused.Load():
		return TrapOOM
	case inst.stderr.sawPanic.Load():
		return TrapPanic
	case errors.As(err, &exit):
		return TrapExit
	default:
		return TrapWasm
	}
}

// describe returns reason, followed by what the guest's runtime printed about
// its panic or fatal error, if anything.
func (inst *instance) describe(reason string) string {
	if line, ok := inst.stderr.panicLine.Load().(string); ok {
		return reason + " (" + line + ")"
	}
	return reason
}

// maxLogLine bounds one log line from the guest; longer text is cut.
const maxLogLine = 64 << 10

// lineWriter turns a guest's stdout or stderr into log lines. wazero calls
// Write on the goroutine running the guest, so only reconcileID, which the
// pool sets, needs to be atomic.
type lineWriter struct {
	buf         []byte
	emit        func(line string)
	reconcileID atomic.Value // string
	sawPanic    atomic.Bool  // the Go runtime printed "panic: " or "fatal error: "
	panicLine   atomic.Value // string: the first such line
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLine - len(w.buf)
			w.buf = append(w.buf, p[:min(len(p), room)]...)
			if len(w.buf) >= maxLogLine {
				w.Flush()
			}
			break
		}
		w.buf = append(w.buf, p[:min(i, max(0, maxLogLine-len(w.buf)))]...)
		w.Flush()
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits a pending partial line.
func (w *lineWriter) Flush() {
	if len(w.buf) == 0 {
		return
	}
	if bytes.HasPrefix(w.buf, []byte("panic: ")) || bytes.HasPrefix(w.buf, []byte("fatal error: ")) {
		if w.sawPanic.CompareAndSwap(false, true) {
			w.panicLine.Store(string(w.buf))
		}
	}
	w.emit(string(w.buf))
	w.buf = w.buf[:0]
}
