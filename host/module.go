package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host/reconcile"
)

// Defaults of ModuleOptions.
const (
	DefaultConcurrency              = 1
	DefaultReconcileTimeout         = 30 * time.Second
	DefaultInitTimeout              = 10 * time.Second
	DefaultMemoryLimitBytes         = 128 << 20
	DefaultMaxReconcilesPerInstance = 10000
	DefaultIdleTimeout              = time.Minute
	DefaultMaxLogLines              = 1000
	DefaultMaxLogBytes              = 1 << 20
)

// ModuleOptions configure one running module.
type ModuleOptions struct {
	// Name identifies the module in metrics, logs and events, and is the field
	// manager of its writes. Required.
	Name string
	// Permissions are checked on every host call. Defaults to none: every
	// object call is denied.
	Permissions Permissions
	// Concurrency is the number of instances, hence of reconciles running at
	// once. Defaults to DefaultConcurrency (1).
	Concurrency int
	// ReconcileTimeout stops a reconcile, even one spinning in a loop (with
	// RuntimeOptions.TrustedGuests the reconcile ends but such a loop runs on).
	// Defaults to DefaultReconcileTimeout (30s).
	ReconcileTimeout time.Duration
	// InitTimeout bounds creating an instance, _initialize included; it is
	// separate from ReconcileTimeout so that a slow start does not eat into a
	// reconcile. An _initialize that runs into it fails the instance with an
	// error naming _initialize and the timeout (trap reason init).
	// Defaults to DefaultInitTimeout (10s).
	InitTimeout time.Duration
	// MemoryLimitBytes caps the linear memory of each instance. Defaults to
	// DefaultMemoryLimitBytes (128 MiB); at most 4 GiB.
	MemoryLimitBytes uint64
	// MaxReconcilesPerInstance recycles an instance after that many
	// reconciles, returning its memory (linear memory never shrinks). Defaults
	// to DefaultMaxReconcilesPerInstance (10000).
	MaxReconcilesPerInstance int
	// IdleTimeout closes instances unused for that long, so that a module
	// with no work keeps no instance (and no linear memory); the next
	// reconcile creates one again. Defaults to RuntimeOptions.IdleTimeout.
	IdleTimeout time.Duration
	// MaxLogLines bounds the log lines a guest writes in one reconcile (or
	// one _initialize): wre.log calls and stdout/stderr lines together. The
	// lines past it, or past MaxLogBytes, are dropped; when the reconcile
	// ends one line starting with LogDroppedMarker reports how many, and
	// wre_module_log_dropped_lines_total and _bytes_total count them.
	// Defaults to DefaultMaxLogLines (1000).
	MaxLogLines int
	// MaxLogBytes bounds the bytes of those lines (each line is also cut at
	// 64 KiB). Defaults to DefaultMaxLogBytes (1 MiB).
	MaxLogBytes int
	// Config is returned by the config host call. Defaults to empty.
	Config []byte
	// ConfigContentType is the content type of Config. Defaults to
	// "application/json".
	ConfigContentType string
	// Client serves live reads and all writes. Required.
	Client dynamic.Interface
	// Cache serves reads of cached resources. Defaults to nil: every read is live.
	Cache Cache
	// Recorder records the events of guests and of trapped reconciles.
	// Defaults to one that drops them.
	Recorder record.EventRecorder
	// Primary is the resource the module reconciles; events about "the
	// reconciled object" refer to it. Required.
	Primary schema.GroupVersionResource
	// PrimaryKind is the kind of Primary. Required.
	PrimaryKind string
	// Clock tells idle time. Defaults to the real clock.
	Clock clock.WithTicker
}

// Module runs one compiled module as a reconcile.Reconciler, with a pool of
// instances. It is safe for concurrent use.
type Module struct {
	rt       *Runtime
	compiled *CompiledModule
	opts     ModuleOptions
	log      logr.Logger
	slots    chan struct{} // one token per instance that may exist
	// projected is the ABI version's projected flag (v2): host calls carry
	// objects in declared projections.
	projected bool
	// trapEventTimeout is recordTrapTimeout; tests shorten it.
	trapEventTimeout time.Duration

	mu sync.Mutex
	// projections are the ABI v2 projections the module's instances
	// declared, in order; primary is the first of the primary resource.
	projections []*projection
	primary     *projection
	idle        []*instance // most recently used last
	live        int
	idleClosed  int64 // instances closed for idleness, ever
	closed      bool
	stop        chan struct{}
	done        chan struct{}
}

var _ reconcile.Reconciler = (*Module)(nil)

// NewModule prepares a module for reconciling. Instances are created lazily.
// The compiled module must stay open while the Module runs.
func (rt *Runtime) NewModule(ctx context.Context, compiled *CompiledModule, opts ModuleOptions) (*Module, error) {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = rt.opts.IdleTimeout
	}
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("new module %q: %w", opts.Name, err)
	}
	if min := compiled.entry.minBytes; min > opts.MemoryLimitBytes {
		return nil, fmt.Errorf("new module %q: initial memory of %d bytes exceeds the limit of %d bytes", opts.Name, min, opts.MemoryLimitBytes)
	}
	m := &Module{
		rt: rt, compiled: compiled, opts: opts, projected: compiled.entry.version.projected,
		log:              rt.opts.Logger.WithValues("module", opts.Name),
		slots:            make(chan struct{}, opts.Concurrency),
		trapEventTimeout: recordTrapTimeout,
		stop:             make(chan struct{}), done: make(chan struct{}),
	}
	rt.opts.Metrics.initModule(opts.Name)
	go m.reapIdle()
	return m, nil
}

func (o *ModuleOptions) defaults() error {
	switch {
	case o.Name == "":
		return errors.New("name is required")
	case o.Client == nil:
		return errors.New("client is required")
	case o.Primary.Resource == "" || o.PrimaryKind == "":
		return errors.New("primary resource and kind are required")
	case o.MemoryLimitBytes > 1<<32:
		return fmt.Errorf("memory limit %d exceeds 4 GiB", o.MemoryLimitBytes)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.ReconcileTimeout <= 0 {
		o.ReconcileTimeout = DefaultReconcileTimeout
	}
	if o.InitTimeout <= 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.MemoryLimitBytes == 0 {
		o.MemoryLimitBytes = DefaultMemoryLimitBytes
	}
	if o.MaxReconcilesPerInstance <= 0 {
		o.MaxReconcilesPerInstance = DefaultMaxReconcilesPerInstance
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxLogLines <= 0 {
		o.MaxLogLines = DefaultMaxLogLines
	}
	if o.MaxLogBytes <= 0 {
		o.MaxLogBytes = DefaultMaxLogBytes
	}
	if o.ConfigContentType == "" {
		o.ConfigContentType = abi.ContentTypeJSON
	}
	if o.Recorder == nil {
		o.Recorder = &record.FakeRecorder{}
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return nil
}

// Name returns the module's name.
func (m *Module) Name() string { return m.opts.Name }

// Reconcile runs wre_reconcile in an instance. A trap, panic (unrecovered, or
// recovered and reported by the guest), timeout, memory exhaustion, ABI
// violation or failed instance creation fails only this reconcile: the
// instance is discarded, wre_guest_traps_total counts the reason and a Warning
// event is recorded on the object.
func (m *Module) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	return m.reconcile(ctx, req, nil)
}

// reconcile is Reconcile, recording the reads and effects of the reconcile
// in rs unless it is nil.
func (m *Module) reconcile(ctx context.Context, req reconcile.Request, rs *ReadSet) (reconcile.Result, error) {
	inst, err := m.acquire(ctx)
	if err != nil {
		var ie *initError
		if errors.As(err, &ie) {
			err = fmt.Errorf("module %q: reconcile %s: %s: %w", m.opts.Name, req, ie.describe(), ie.err)
			m.recordTrap(ctx, req, TrapInit, err)
		}
		return reconcile.Result{}, err
	}
	// The timeout starts once an instance is ready: creating one has its own.
	ctx, cancel := context.WithTimeout(ctx, m.opts.ReconcileTimeout)
	defer cancel()
	id := string(uuid.NewUUID())
	st := &callState{m: m, reconciling: true, ns: req.Namespace, name: req.Name, id: id, reads: rs}
	m.recordPrimary(rs, req)
	ctx = context.WithValue(ctx, callKey{}, st)
	st.inst = inst
	inst.beginReconcile(id)
	inst.uses++
	v := m.compiled.entry.version
	res, err := callGuest(m, ctx, inst, func() (abi.ReconcileResponse, error) { return v.reconcile(ctx, m, inst, req, id) })
	inst.logs.end(m, st.logger())
	if err == nil && res.Panicked {
		err = &recoveredPanic{msg: bound(res.Error, maxPanicText)}
	}
	if err != nil {
		reason := inst.classify(err)
		m.rt.opts.Metrics.GuestTraps.WithLabelValues(m.opts.Name, reason).Inc()
		m.release(ctx, inst, false)
		err = fmt.Errorf("module %q: reconcile %s: %s: %w", m.opts.Name, req, inst.describe(reason, err), err)
		m.recordTrap(ctx, req, reason, err)
		return reconcile.Result{}, err
	}
	m.release(ctx, inst, true)
	if res.Failed {
		err := errors.New(res.Error)
		if res.Terminal {
			err = reconcile.TerminalError(err)
		}
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: time.Duration(max(res.RequeueAfterNanos, 0))}, nil
}

// maxPanicText bounds the panic message and stack a guest reports
// (abi.ReconcileResponse.Panicked) in the reconcile error.
const maxPanicText = 8 << 10

// recoveredPanic is a panic the guest recovered and reported in its
// ReconcileResponse (docs/abi.md §3.3).
type recoveredPanic struct{ msg string }

func (e *recoveredPanic) Error() string { return "recovered by the guest: " + e.msg }

// bound cuts s to at most n bytes, saying so.
func bound(s string, n int) string {
	const marker = " …[cut]"
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-len(marker)], "") + marker
}

// recordTrapTimeout bounds the read of the reconciled object that gives a
// trap's event its UID: the reconcile is over (possibly because its context
// ended), and a hung API server must not hold up the worker.
const recordTrapTimeout = 5 * time.Second

// recordTrap records a Warning event on the reconciled object; without its
// UID (object gone, unreadable, or not read within recordTrapTimeout) the
// event still names it. It runs even when ctx has ended.
func (m *Module) recordTrap(ctx context.Context, req reconcile.Request, reason string, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.trapEventTimeout)
	defer cancel()
	ref, getErr := m.objectRef(ctx, m.opts.Primary, m.opts.PrimaryKind, req.Namespace, req.Name, false)
	if getErr != nil {
		ref = &corev1.ObjectReference{
			APIVersion: m.opts.Primary.GroupVersion().String(), Kind: m.opts.PrimaryKind,
			Namespace: req.Namespace, Name: req.Name,
		}
	}
	m.opts.Recorder.Eventf(ref, corev1.EventTypeWarning, "ReconcileTrapped",
		"module %s: reconcile failed (%s), instance discarded: %s", m.opts.Name, reason, firstLine(err.Error()))
}

func firstLine(s string) string {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// acquire returns an idle instance or creates one, waiting while all
// Concurrency instances are busy.
func (m *Module) acquire(ctx context.Context) (*instance, error) {
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("module %q: wait for an instance: %w", m.opts.Name, ctx.Err())
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.slots
		return nil, fmt.Errorf("module %q: closed", m.opts.Name)
	}
	m.evictIdleLocked(ctx)
	if n := len(m.idle); n > 0 {
		inst := m.idle[n-1]
		m.idle = m.idle[:n-1]
		m.mu.Unlock()
		return inst, nil
	}
	m.live++
	m.mu.Unlock()
	m.rt.opts.Metrics.Instances.WithLabelValues(m.opts.Name).Inc()

	initCtx, cancel := context.WithTimeout(ctx, m.opts.InitTimeout)
	defer cancel()
	inst, err := m.newInstance(initCtx)
	if err != nil && ctx.Err() == nil && errors.Is(initCtx.Err(), context.DeadlineExceeded) {
		// Instantiating runs no guest code (no start functions): only
		// _initialize can have run into the init timeout.
		err = fmt.Errorf("_initialize did not return within the init timeout of %s: %w", m.opts.InitTimeout, err)
	}
	if err != nil {
		m.rt.opts.Metrics.GuestTraps.WithLabelValues(m.opts.Name, TrapInit).Inc()
		ie := &initError{module: m.opts.Name, err: err}
		if inst != nil {
			ie.panicLine = inst.panicLine()
		}
		m.drop(ctx, inst)
		<-m.slots
		return nil, ie
	}
	return inst, nil
}

// initError is a failure to create an instance (trap reason "init").
type initError struct {
	module    string
	panicLine string // what the guest's runtime printed about its panic, if anything
	err       error
}

// describe returns the reason, with the guest's panic line if any.
func (e *initError) describe() string {
	if e.panicLine != "" {
		return TrapInit + " (" + e.panicLine + ")"
	}
	return TrapInit
}

func (e *initError) Error() string {
	return fmt.Sprintf("module %q: %s: %v", e.module, e.describe(), e.err)
}

func (e *initError) Unwrap() error { return e.err }

// Warm creates an instance (running _initialize) and keeps it idle in the
// pool, so that a module that cannot start fails here, before it serves any
// reconcile. It waits like Reconcile while all instances are busy.
func (m *Module) Warm(ctx context.Context) error {
	inst, err := m.acquire(ctx)
	if err != nil {
		return err
	}
	m.release(ctx, inst, true)
	return nil
}

// release returns inst to the pool, or drops it when it is unhealthy, used
// up, or the module is closed. Its slot is free again at once, even when inst
// is abandoned: a runaway does not hold up the module's reconciles.
func (m *Module) release(ctx context.Context, inst *instance, healthy bool) {
	inst.lastUsed = m.opts.Clock.Now()
	m.mu.Lock()
	keep := healthy && !m.closed && inst.uses < m.opts.MaxReconcilesPerInstance
	if keep {
		m.idle = append(m.idle, inst)
	}
	m.mu.Unlock()
	if !keep {
		m.drop(ctx, inst)
	}
	<-m.slots
}

// drop closes inst and stops counting it as live; inst is nil when
// instantiation failed. An abandoned instance is closed, and stops counting,
// only once its guest code has returned, so it keeps its module's metric
// series alive until then.
func (m *Module) drop(ctx context.Context, inst *instance) {
	if inst != nil && inst.abandoned != nil {
		go func() {
			m.awaitRunaway(inst)
			m.drop(context.WithoutCancel(ctx), inst)
		}()
		return
	}
	m.mu.Lock()
	m.live--
	last := m.closed && m.live == 0
	m.mu.Unlock()
	if inst != nil {
		inst.close(ctx)
	}
	m.rt.opts.Metrics.Instances.WithLabelValues(m.opts.Name).Dec()
	if last {
		m.rt.opts.Metrics.forgetModule(m.opts.Name)
	}
}

func (m *Module) discard(ctx context.Context, inst *instance) {
	inst.close(ctx)
	m.rt.opts.Metrics.Instances.WithLabelValues(m.opts.Name).Dec()
}

// evictIdleLocked closes instances idle for longer than IdleTimeout. An
// instance is either in m.idle or held by one reconcile, never both, and both
// acquire and eviction take it out of m.idle under m.mu: an instance being
// acquired is never closed.
func (m *Module) evictIdleLocked(ctx context.Context) {
	deadline := m.opts.Clock.Now().Add(-m.opts.IdleTimeout)
	keep := m.idle[:0]
	for _, inst := range m.idle {
		if inst.lastUsed.After(deadline) {
			keep = append(keep, inst)
			continue
		}
		m.live--
		m.idleClosed++
		m.rt.opts.Metrics.IdleClosed.WithLabelValues(m.opts.Name).Inc()
		m.discard(ctx, inst)
	}
	clear(m.idle[len(keep):])
	m.idle = keep
}

// reapIdle evicts idle instances periodically, so an unused module gives its
// memory back without waiting for its next reconcile: an instance is closed
// between one and two IdleTimeouts after its last use.
func (m *Module) reapIdle() {
	defer close(m.done)
	t := m.opts.Clock.NewTicker(m.opts.IdleTimeout)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C():
			m.mu.Lock()
			m.evictIdleLocked(context.Background())
			m.mu.Unlock()
		}
	}
}

// Instances returns the number of live instances: idle, busy, and abandoned
// ones whose guest code still runs (RuntimeOptions.TrustedGuests).
func (m *Module) Instances() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live
}

// IdleClosed returns how many instances of this Module were closed because
// they stayed idle for IdleTimeout.
func (m *Module) IdleClosed() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.idleClosed
}

// Close discards idle instances and stops new reconciles; busy instances are
// discarded when their reconcile ends. The module's metric series are deleted
// when no other Module of the same name runs. Closing twice is a no-op.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	idle := m.idle
	m.idle = nil
	m.live -= len(idle)
	last := m.live == 0 // otherwise the last busy instance's release forgets
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	for _, inst := range idle {
		m.discard(ctx, inst)
	}
	if last {
		m.rt.opts.Metrics.forgetModule(m.opts.Name)
	}
	return nil
}
