package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// DefaultMaxMessageSize is the largest message that crosses the ABI boundary
// unless RuntimeOptions.MaxMessageSize says otherwise.
const DefaultMaxMessageSize = 16 << 20

// RuntimeOptions configure a Runtime.
type RuntimeOptions struct {
	// CacheDir holds compiled machine code across restarts, keyed by the
	// module bytes, the wazero version and the loop check setting. Code
	// compiled with loop checks and without (TrustedGuests) lives in separate
	// subdirectories, "checked" and "unchecked". Defaults to "" (compile in
	// memory only).
	CacheDir string
	// MaxMessageSize bounds every message in either direction. Defaults to
	// DefaultMaxMessageSize (16 MiB).
	MaxMessageSize int
	// Metrics receives the host metrics. Defaults to a set that is registered
	// nowhere.
	Metrics *Metrics
	// Logger receives guest logs and host diagnostics. Defaults to logr.Discard().
	Logger logr.Logger
	// TrustedGuests compiles guests without wazero's loop checks, which makes
	// Go guests 3–4× faster in CPU (RATIONALE.md) but takes away the guarantee
	// that a timeout stops guest code that makes no host call. The reconcile
	// still ends at its timeout (or at shutdown) with the same timeout error,
	// and the guest is aborted at its next wre host call, but guest code that
	// loops without one keeps running on a goroutine of its own: its instance
	// is abandoned (never reused, closed when its code returns) and counted by
	// Runaways and wre_guest_runaway_instances. A module that never returns
	// holds a CPU core and its memory until the process restarts. Set it only
	// for modules trusted as much as the engine itself. Defaults to false.
	TrustedGuests bool
	// IdleTimeout is the ModuleOptions.IdleTimeout of modules that set none:
	// how long an unused instance is kept before it is closed. Defaults to
	// DefaultIdleTimeout (1m).
	IdleTimeout time.Duration
}

// Compilation cache subdirectories of RuntimeOptions.CacheDir, one per loop
// check setting. wazero v1.12 already hashes the setting into its cache key
// (wasm.Module.AssignModuleID), but that is an internal detail; separate
// directories keep a checked runtime from ever loading code it cannot stop,
// whatever a future wazero keys on.
const (
	checkedCacheDir   = "checked"
	uncheckedCacheDir = "unchecked"
)

// Runtime compiles and runs reconciler modules. It is safe for concurrent use.
type Runtime struct {
	opts  RuntimeOptions
	wz    wazero.Runtime
	cache wazero.CompilationCache
	wasi  map[string]api.FunctionDefinition
	abis  abiTable // the ABI versions this runtime supports

	// mu guards the maps and closed; it is never held while compiling, so
	// modules of different bytes compile in parallel and closing a
	// CompiledModule never waits for a compile.
	mu        sync.Mutex
	compiled  map[string]*compiledEntry // by digest
	compiling map[string]*compileCall   // by digest: compiles in flight
	closed    bool
	// compileHook, when set (by tests), runs before each compile starts.
	compileHook func(digest string)

	runaways atomic.Int64 // abandoned instances whose guest code still runs
}

// compileCall is one compile in flight; callers asking for the same bytes
// meanwhile wait for done instead of compiling again.
type compileCall struct {
	done chan struct{}
	err  error // set before done is closed
	// retry tells waiters that the compiling caller's context ended: the
	// bytes were not judged, and a waiter whose own context is live compiles.
	retry bool
	// waiters counts the callers that found this compile in flight (under
	// Runtime.mu); tests use it to know when callers wait.
	waiters int
}

type compiledEntry struct {
	digest   string
	wz       wazero.CompiledModule
	version  *abiVersion
	hasInit  bool
	minBytes uint64 // initial linear memory
	refs     int
}

// NewRuntime creates a Runtime: a wazero runtime with the wre and WASI host
// modules, and the compilation cache.
func NewRuntime(ctx context.Context, opts RuntimeOptions) (*Runtime, error) {
	return newRuntime(ctx, opts, builtinABIVersions)
}

// newRuntime is NewRuntime supporting the given ABI versions.
func newRuntime(ctx context.Context, opts RuntimeOptions, versions []*abiVersion) (*Runtime, error) {
	abis, err := newABITable(versions)
	if err != nil {
		return nil, err
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		opts.Metrics = m
	}
	var cache wazero.CompilationCache
	if opts.CacheDir != "" {
		dir := filepath.Join(opts.CacheDir, checkedCacheDir)
		if opts.TrustedGuests {
			dir = filepath.Join(opts.CacheDir, uncheckedCacheDir)
		}
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache %q: %w", dir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithCloseOnContextDone(!opts.TrustedGuests).
		WithCoreFeatures(api.CoreFeaturesV2)
	rt := &Runtime{opts: opts, cache: cache, wz: wazero.NewRuntimeWithConfig(ctx, cfg), abis: abis,
		compiled: map[string]*compiledEntry{}, compiling: map[string]*compileCall{}}
	if err := rt.instantiateHostModules(ctx); err != nil {
		_ = rt.wz.Close(ctx)
		_ = cache.Close(ctx)
		return nil, err
	}
	return rt, nil
}

func (rt *Runtime) instantiateHostModules(ctx context.Context) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt.wz); err != nil {
		return fmt.Errorf("instantiate WASI: %w", err)
	}
	rt.wasi = rt.wz.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()
	funcs, err := rt.abis.hostFunctions()
	if err != nil {
		return err
	}
	b := rt.wz.NewHostModuleBuilder(abi.ImportModule)
	for name, imps := range funcs {
		b.NewFunctionBuilder().
			WithGoModuleFunction(rt.dispatch(name, imps[0]), imps[0].sig.params, imps[0].sig.results).
			WithParameterNames(imps[0].params...).
			Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiate host module %q: %w", abi.ImportModule, err)
	}
	return nil
}

// CompiledModule is validated, compiled code of one module, shared by every
// Module made from it. Close it when no new Module will be made from it.
type CompiledModule struct {
	name  string
	rt    *Runtime
	entry *compiledEntry
	once  sync.Once
}

// Name returns the name the module was compiled under.
func (c *CompiledModule) Name() string { return c.name }

// Digest returns the hex SHA-256 of the module bytes.
func (c *CompiledModule) Digest() string { return c.entry.digest }

// ABIVersion returns the marker export of the module, e.g. "wre_abi_v1".
func (c *CompiledModule) ABIVersion() string { return c.entry.version.marker }

// Close releases the compiled code once no other CompiledModule of the same
// bytes remains. Modules made from it keep working until they are closed.
// Closing twice is a no-op.
func (c *CompiledModule) Close(ctx context.Context) error {
	var err error
	c.once.Do(func() { err = c.rt.release(ctx, c.entry) })
	return err
}

// Compile validates and compiles wasm, or reuses the compiled code of identical
// bytes. It refuses a module whose ABI marker, exports or imports this host does
// not support, naming each problem. Concurrent calls with the same bytes
// compile them once; calls with different bytes compile in parallel.
func (rt *Runtime) Compile(ctx context.Context, name string, wasm []byte) (*CompiledModule, error) {
	sum := sha256.Sum256(wasm)
	digest := hex.EncodeToString(sum[:])
	for {
		rt.mu.Lock()
		if rt.closed {
			rt.mu.Unlock()
			return nil, fmt.Errorf("compile module %q: runtime closed", name)
		}
		if e, ok := rt.compiled[digest]; ok {
			e.refs++
			rt.mu.Unlock()
			return &CompiledModule{name: name, rt: rt, entry: e}, nil
		}
		if c, ok := rt.compiling[digest]; ok {
			c.waiters++
			rt.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("compile module %q: %w", name, ctx.Err())
			}
			if c.err != nil && !c.retry {
				return nil, fmt.Errorf("compile module %q: %w", name, c.err)
			}
			continue // take a reference to the entry, or compile if it is gone
		}
		c := &compileCall{done: make(chan struct{})}
		rt.compiling[digest] = c
		rt.mu.Unlock()

		e, err := rt.compile(ctx, digest, wasm)
		rt.mu.Lock()
		delete(rt.compiling, digest)
		if err == nil && rt.closed {
			_ = e.wz.Close(ctx)
			e, err = nil, errors.New("runtime closed")
		}
		if err == nil {
			e.refs = 1
			rt.compiled[digest] = e
		}
		c.err, c.retry = err, err != nil && ctx.Err() != nil
		close(c.done)
		rt.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("compile module %q: %w", name, err)
		}
		return &CompiledModule{name: name, rt: rt, entry: e}, nil
	}
}

// compile compiles and validates wasm without holding rt.mu.
func (rt *Runtime) compile(ctx context.Context, digest string, wasm []byte) (*compiledEntry, error) {
	if rt.compileHook != nil {
		rt.compileHook(digest)
	}
	start := time.Now()
	wz, err := rt.wz.CompileModule(ctx, wasm)
	if err != nil {
		return nil, err
	}
	rt.opts.Metrics.CompileSeconds.Observe(time.Since(start).Seconds())
	e, err := rt.validate(wz)
	if err != nil {
		_ = wz.Close(ctx)
		return nil, err
	}
	e.digest = digest
	return e, nil
}

func (rt *Runtime) release(ctx context.Context, e *compiledEntry) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if e.refs--; e.refs > 0 || rt.closed {
		return nil
	}
	delete(rt.compiled, e.digest)
	return e.wz.Close(ctx)
}

// Runaways returns the number of instances whose reconcile (or
// initialization) ended at its timeout while their guest code kept running.
// It is always 0 unless RuntimeOptions.TrustedGuests is set; a value that does
// not drop back to 0 means a guest holds a CPU core until the process restarts.
func (rt *Runtime) Runaways() int { return int(rt.runaways.Load()) }

// Close closes every module instance, all compiled code and the compilation
// cache handle, after compiles in flight end (they then fail). It does not
// wait for runaway guest code (see Runaways), which
// only a process exit stops. Closing twice is a no-op.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	inFlight := make([]*compileCall, 0, len(rt.compiling))
	for _, c := range rt.compiling {
		inFlight = append(inFlight, c)
	}
	rt.mu.Unlock()
	for _, c := range inFlight {
		<-c.done // closing the wazero runtime under a compile is not supported
	}
	if n := rt.Runaways(); n > 0 {
		rt.opts.Logger.Error(nil, "Closing the runtime while guest code of abandoned instances still runs; only a process exit stops it", "runaways", n)
	}
	return errors.Join(rt.wz.Close(ctx), rt.cache.Close(ctx))
}

// validate checks the ABI marker, exports and imports of a compiled module.
func (rt *Runtime) validate(wz wazero.CompiledModule) (*compiledEntry, error) {
	exports := wz.ExportedFunctions()
	var markers []string
	for name := range exports {
		if strings.HasPrefix(name, abiMarkerPrefix) {
			markers = append(markers, name)
		}
	}
	slices.Sort(markers)
	if len(markers) != 1 || rt.abis[markers[0]] == nil {
		return nil, fmt.Errorf("unsupported ABI: module exports %s, host supports %s (exactly one is required)",
			listOrNone(markers), listOrNone(rt.abis.markers()))
	}
	v := rt.abis[markers[0]]
	var problems []error
	for _, want := range v.exports {
		got, ok := exports[want.name]
		switch {
		case !ok && !want.optional:
			problems = append(problems, fmt.Errorf("missing export %s %s", want.name, want.sig))
		case ok && !want.sig.matches(got):
			problems = append(problems, fmt.Errorf("export %s has signature %s, want %s", want.name, sigOf(got), want.sig))
		}
	}
	if _, ok := wz.ExportedMemories()["memory"]; !ok {
		problems = append(problems, errors.New("missing export memory"))
	}
	for _, imp := range wz.ImportedFunctions() {
		mod, name, _ := imp.Import()
		var want *signature
		switch mod {
		case abi.ImportModule:
			if imp, ok := v.imports[name]; ok {
				want = &imp.sig
			}
		case wasi_snapshot_preview1.ModuleName:
			if d, ok := rt.wasi[name]; ok {
				s := sigOf(d)
				want = &s
			}
		}
		switch {
		case want == nil:
			problems = append(problems, fmt.Errorf("unsupported import %s.%s", mod, name))
		case !want.matches(imp):
			problems = append(problems, fmt.Errorf("import %s.%s has signature %s, want %s", mod, name, sigOf(imp), *want))
		}
	}
	if n := len(wz.ImportedMemories()); n > 0 {
		problems = append(problems, fmt.Errorf("imports %d memories; the module must define its own", n))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	mem := wz.ExportedMemories()["memory"]
	_, hasInit := exports["_initialize"]
	return &compiledEntry{wz: wz, version: v, hasInit: hasInit, minBytes: uint64(mem.Min()) * 65536}, nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no wre_abi_v* marker"
	}
	return "[" + strings.Join(names, " ") + "]"
}
