package registry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/wre-dev/wre/engine/memo"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
)

// version is one loaded version of a module: its compiled code and the
// module running it.
type version struct {
	digest   string
	abi      string
	compiled *host.CompiledModule
	module   *host.Module
	// reconciler is module, or memo over it when the manifest asks for
	// memoization: a new version (or config) starts with no read sets.
	reconciler reconcile.Reconciler
	memo       *memo.Reconciler // nil unless memoized
	inflight   sync.WaitGroup
}

// newVersion returns the version of manifest m running mod.
func (r *Registry) newVersion(m *modules.Manifest, compiled *host.CompiledModule, mod *host.Module) *version {
	v := &version{digest: m.Digest, abi: m.ABI, compiled: compiled, module: mod, reconciler: mod}
	if m.Memoize {
		// New fails only without a module name, which a valid manifest has.
		v.memo, _ = memo.New(mod, memo.Options{Module: m.Name, Size: r.opts.MemoSize, Metrics: r.opts.Metrics.Memo})
		v.reconciler = v.memo
	}
	return v
}

// close waits for the reconciles running on v, then closes its module and
// compiled code and drops its read sets.
func (v *version) close(ctx context.Context) {
	v.inflight.Wait()
	if v.memo != nil {
		v.memo.Close()
	}
	_ = v.module.Close(ctx)
	_ = v.compiled.Close(ctx)
}

// slot is the reconciler the controller of a module calls: it forwards to the
// current version, which swap replaces without stopping the controller, so the
// work queue and the informers survive a new version. The controller never
// runs one key on two workers at once, and a key's reconcile that began on the
// old version ends before the key can be picked again, so no object is ever
// reconciled by two versions at the same time.
type slot struct {
	mu      sync.RWMutex
	current *version
	stopped bool // the engine is shutting down: current is being closed

	reconciles atomic.Int64
	errors     atomic.Int64
}

var _ reconcile.Reconciler = (*slot)(nil)

func newSlot(v *version) *slot { return &slot{current: v} }

// Reconcile runs req on the current version.
func (s *slot) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	s.mu.RLock()
	if s.stopped {
		s.mu.RUnlock()
		return reconcile.Result{}, errStopped
	}
	v := s.current
	v.inflight.Add(1) // under the lock: swap and stop cannot miss it
	s.mu.RUnlock()
	defer v.inflight.Done()
	res, err := v.reconciler.Reconcile(ctx, req)
	s.reconciles.Add(1)
	if err != nil {
		s.errors.Add(1)
	}
	return res, err
}

// swap makes next the current version and returns the previous one; new
// reconciles go to next at once, those in flight finish on the previous one.
func (s *slot) swap(next *version) *version {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.current
	s.current = next
	return prev
}

// errStopped fails the reconciles that reach a slot after stop.
var errStopped = errors.New("module registry stopped")

// stop makes every later Reconcile fail with errStopped and returns the
// current version, which the caller closes: no reconcile can begin on it
// while its close waits for those in flight.
func (s *slot) stop() *version {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	return s.current
}

// version returns the current version.
func (s *slot) version() *version {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current
}
