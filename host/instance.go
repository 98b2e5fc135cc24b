package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

// instance is one instantiated guest. It is not safe for concurrent use: the
// pool hands it to one reconcile at a time.
type instance struct {
	mod                    api.Module
	alloc, free, reconcile api.Function
	mem                    *cappedMemory
	stdout, stderr         *lineWriter
	logs                   logBudget // of the running reconcile or _initialize
	uses                   int
	lastUsed               time.Time
	// abandoned waits for the guest code of a runaway instance (callGuest)
	// to return and returns its error; nil for every other instance.
	abandoned   func() error
	abandonedAt time.Time

	// ABI v2 only: the buffer the guest lent (wre_buffer), the builders of
	// the records the host writes into it, and how many projections this
	// instance declared.
	buf      buffer
	out, obj flat.Builder
	declared int
	stack    [2]uint64 // of wre_reconcile, reused
}

// callKey is the context key of the *callState of a running guest call.
type callKey struct{}

// callState travels in the context of every guest call, so host functions know
// which module and reconcile they serve.
type callState struct {
	m           *Module
	inst        *instance
	reconciling bool // false during _initialize: only config, declare and log are served
	ns, name    string
	id          string // the reconcile ID; "" during _initialize
	log         *logr.Logger
	reads       *ReadSet // recorded by ReconcileReads; nil otherwise
}

// logger returns the module's logger tagged with the reconcile ID and
// object, built on first use: most reconciles log nothing.
func (st *callState) logger() logr.Logger {
	if st.log == nil {
		l := st.m.log
		if st.reconciling {
			l = l.WithValues("reconcileID", st.id, "object", objectKey(st.ns, st.name))
		}
		st.log = &l
	}
	return *st.log
}

func objectKey(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
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
		logs:   logBudget{maxLines: m.opts.MaxLogLines, maxBytes: m.opts.MaxLogBytes},
	}
	inst.stdout.emit = func(line string) {
		if inst.logs.take(len(line)) {
			m.log.Info(line, "stream", "stdout", "reconcileID", inst.stdout.reconcileID.Load())
		}
	}
	inst.stderr.emit = func(line string) {
		if inst.logs.take(len(line)) {
			m.log.Error(nil, line, "stream", "stderr", "reconcileID", inst.stderr.reconcileID.Load())
		}
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
	ctx = context.WithValue(ctx, callKey{}, &callState{m: m, inst: inst})
	mod, err := m.instantiate(ctx, inst, cfg)
	if err != nil {
		inst.mem.release()
		return nil, err
	}
	inst.mod = mod
	v := m.compiled.entry.version
	inst.alloc = mod.ExportedFunction(v.alloc)
	inst.free = mod.ExportedFunction(v.free)
	inst.reconcile = mod.ExportedFunction(v.reconcileExport)
	if m.compiled.entry.hasInit {
		initialize := mod.ExportedFunction("_initialize")
		_, err := callGuest(m, ctx, inst, func() ([]uint64, error) { return initialize.Call(ctx) })
		inst.logs.end(m, m.log)
		if err != nil {
			return inst, err
		}
	}
	return inst, nil
}

// instantiate instantiates the module with inst's memory. wazero panics when
// the allocator gives no initial memory; that failure of the reservation is
// returned as an error.
func (m *Module) instantiate(ctx context.Context, inst *instance, cfg wazero.ModuleConfig) (mod api.Module, err error) {
	defer func() {
		if inst.mem.err == nil {
			return
		}
		if r := recover(); r != nil || err != nil {
			mod, err = nil, inst.mem.err
		}
	}()
	return m.rt.wz.InstantiateModule(ctx, m.compiled.entry.wz, cfg)
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

// beginReconcile tags the instance's output with the reconcile ID and forgets
// what an earlier call left behind that classify reads (a line its runtime
// printed about a panic, a refused memory grow the guest survived), so that
// only this reconcile's own state labels its failure.
func (inst *instance) beginReconcile(id string) {
	for _, w := range []*lineWriter{inst.stdout, inst.stderr} {
		w.reconcileID.Store(id)
	}
	inst.stderr.sawPanic.Store(false)
	inst.stderr.sawOOM.Store(false)
	inst.stderr.panicLine.Store("")
	inst.mem.refused.Store(false)
}

// classify names why a guest call failed, for wre_guest_traps_total.
func (inst *instance) classify(err error) string {
	var exit *sys.ExitError
	var proto *protocolError
	var recovered *recoveredPanic
	switch {
	case errors.As(err, &recovered):
		return TrapPanic
	case errors.As(err, &proto):
		return TrapProtocol
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded:
		return TrapTimeout
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled:
		return TrapCanceled
	case inst.mem.refused.Load(), inst.stderr.sawOOM.Load():
		// A grow past the cap that the allocator refused, or one wazero
		// refused before asking it (past the module's declared maximum,
		// e.g. a 4 GiB make) that the guest's runtime reported.
		return TrapOOM
	case inst.stderr.sawPanic.Load():
		return TrapPanic
	case errors.As(err, &exit):
		return TrapExit
	default:
		return TrapWasm
	}
}

// describe returns reason, followed by the first line of the panic the guest
// reported in err, or else what its runtime printed about its panic or fatal
// error, if anything.
func (inst *instance) describe(reason string, err error) string {
	var recovered *recoveredPanic
	if errors.As(err, &recovered) {
		return reason + " (" + firstLine(recovered.msg) + ")"
	}
	if line := inst.panicLine(); line != "" {
		return reason + " (" + line + ")"
	}
	return reason
}

// panicLine returns the first "panic: " or "fatal error: " line the guest's
// runtime printed to stderr in the current reconcile (or in _initialize).
func (inst *instance) panicLine() string {
	line, _ := inst.stderr.panicLine.Load().(string)
	return line
}

// maxLogLine bounds one log line from the guest; longer text is cut, and a
// cut stdout or stderr line ends with cutMarker.
const maxLogLine = 64 << 10

// cutMarker ends a stdout or stderr line that was cut at maxLogLine.
const cutMarker = " …[cut]"

// goOOMLine is what the Go runtime prints when an allocation finds no memory.
const goOOMLine = "fatal error: out of memory"

// lineWriter turns a guest's stdout or stderr into log lines. wazero calls
// Write on the goroutine running the guest, so only reconcileID, which the
// pool sets, needs to be atomic.
type lineWriter struct {
	buf         []byte
	cut         bool // the current line exceeded maxLogLine: drop the rest of it
	emit        func(line string)
	reconcileID atomic.Value // string
	sawPanic    atomic.Bool  // the Go runtime printed "panic: " or "fatal error: "
	sawOOM      atomic.Bool  // the Go runtime printed "fatal error: out of memory"
	panicLine   atomic.Value // string: the first such line
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		line := p
		if i >= 0 {
			line = p[:i]
		}
		room := maxLogLine - len(w.buf)
		if len(line) > room {
			line, w.cut = line[:room], true
		}
		w.buf = append(w.buf, line...)
		if i < 0 {
			break
		}
		w.Flush()
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits a pending partial line.
func (w *lineWriter) Flush() {
	if len(w.buf) == 0 && !w.cut {
		return
	}
	if bytes.HasPrefix(w.buf, []byte("panic: ")) || bytes.HasPrefix(w.buf, []byte("fatal error: ")) {
		if w.sawPanic.CompareAndSwap(false, true) {
			w.panicLine.Store(string(w.buf))
		}
		if bytes.Equal(w.buf, []byte(goOOMLine)) {
			w.sawOOM.Store(true)
		}
	}
	line := string(w.buf)
	if w.cut {
		line = strings.ToValidUTF8(line, "") + cutMarker
	}
	w.emit(line)
	w.buf, w.cut = w.buf[:0], false
}
