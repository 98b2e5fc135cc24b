package memo

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"

	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
)

// DefaultSize is the default number of read sets a module holds.
const DefaultSize = 16384

// Recorder runs reconciles that report their read set and checks a read set
// against the cache; *host.Module is one.
type Recorder interface {
	// ReconcileReads reconciles req and returns its read set.
	ReconcileReads(ctx context.Context, req reconcile.Request) (reconcile.Result, *host.ReadSet, error)
	// Changed returns which entry of rs changed, or "" when none did.
	Changed(rs *host.ReadSet) string
}

var _ Recorder = (*host.Module)(nil)

// Options configure a Reconciler.
type Options struct {
	// Module names the module in metrics. Required.
	Module string
	// Size bounds the read sets held. Defaults to DefaultSize.
	Size int
	// Metrics receives the skips, evictions and read-set sizes. Defaults to
	// a set registered nowhere.
	Metrics *Metrics
}

// Reconciler runs the reconciles of a Recorder, skipping those whose read
// set is unchanged; see the package documentation. It is safe for
// concurrent use; like every Reconciler it must not see one request on two
// workers at once (the engine's queue guarantees it).
type Reconciler struct {
	rec     Recorder
	opts    Options
	skipped atomic.Int64

	mu     sync.Mutex
	lru    *list.List // of *entry, most recently used first
	byKey  map[reconcile.Request]*list.Element
	closed bool
}

type entry struct {
	req reconcile.Request
	rs  *host.ReadSet
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler running the reconciles of rec.
func New(rec Recorder, opts Options) (*Reconciler, error) {
	if opts.Module == "" {
		return nil, errors.New("memo: Module is required")
	}
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil)
	}
	opts.Metrics.InitModule(opts.Module)
	return &Reconciler{rec: rec, opts: opts, lru: list.New(), byKey: map[reconcile.Request]*list.Element{}}, nil
}

// Reconcile skips req when the read set of its last reconcile still holds,
// and otherwise runs it and remembers its read set if it can be the basis
// of a skip.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if rs := r.lookup(req); rs != nil {
		why := r.rec.Changed(rs)
		if why == "" {
			r.opts.Metrics.Skipped.WithLabelValues(r.opts.Module).Inc()
			r.skipped.Add(1)
			return reconcile.Result{}, nil
		}
		logr.FromContextOrDiscard(ctx).V(1).Info("Memoized reconcile runs", "changed", why)
	}
	res, rs, err := r.rec.ReconcileReads(ctx, req)
	if err == nil && res.IsZero() && rs.Reusable() && !rs.Gone() {
		r.opts.Metrics.ReadSetObjects.WithLabelValues(r.opts.Module).Observe(float64(rs.Objects()))
		r.remember(req, rs)
	} else {
		r.forget(req)
	}
	return res, err
}

// lookup returns the read set held for req, or nil, marking it used.
func (r *Reconciler) lookup(req reconcile.Request) *host.ReadSet {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byKey[req]
	if !ok {
		return nil
	}
	r.lru.MoveToFront(el)
	return el.Value.(*entry).rs
}

// remember holds rs for req, evicting the least recently used read set
// beyond Size.
func (r *Reconciler) remember(req reconcile.Request, rs *host.ReadSet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if el, ok := r.byKey[req]; ok {
		el.Value.(*entry).rs = rs
		r.lru.MoveToFront(el)
		return
	}
	r.byKey[req] = r.lru.PushFront(&entry{req: req, rs: rs})
	r.opts.Metrics.Entries.WithLabelValues(r.opts.Module).Inc()
	for r.lru.Len() > r.opts.Size {
		r.removeLocked(r.lru.Back())
		r.opts.Metrics.Evictions.WithLabelValues(r.opts.Module).Inc()
	}
}

// forget drops the read set of req: its next reconcile runs.
func (r *Reconciler) forget(req reconcile.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[req]; ok {
		r.removeLocked(el)
	}
}

func (r *Reconciler) removeLocked(el *list.Element) {
	delete(r.byKey, r.lru.Remove(el).(*entry).req)
	r.opts.Metrics.Entries.WithLabelValues(r.opts.Module).Dec()
}

// Skipped returns the number of requests skipped so far.
func (r *Reconciler) Skipped() int64 { return r.skipped.Load() }

// Len returns the number of read sets held.
func (r *Reconciler) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lru.Len()
}

// Close drops every read set (a retired version's) and stops holding new
// ones. Closing twice is a no-op.
func (r *Reconciler) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.lru.Len() > 0 {
		r.removeLocked(r.lru.Back())
	}
	r.closed = true
}
