package leader

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// leaseWatch watches the Lease for the whole of Run, so that a standby need
// not wait for its retry ticks (jittered up to 2.2 × RetryPeriod) to notice a
// change:
//   - when the lease is released (no holder) it restarts the current standby
//     attempt, which campaigns at once;
//   - when the lease is held by another identity whose record stops changing,
//     it takes the lease over as soon as it expires (see expiry), then
//     restarts the current standby attempt, whose new client-go elector finds
//     itself the holder and leads at once.
//
// Both only restart standby attempts; a leading one is never touched.
type leaseWatch struct {
	e   *Elector
	log logr.Logger

	mu      sync.Mutex
	attempt *attempt
	expiry  expiry
	// rearm wakes the watchdog when the expiry deadline moved.
	rearm chan struct{}

	stop func()
}

// current makes a the attempt that a release or takeover restarts.
func (w *leaseWatch) current(a *attempt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempt = a
}

func (w *leaseWatch) restart(why string) {
	w.mu.Lock()
	a := w.attempt
	w.mu.Unlock()
	if a != nil {
		a.restart(why)
	}
}

// observe handles the Lease as the watch delivers it (list, update, relist).
func (w *leaseWatch) observe(obj any) {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	w.mu.Lock()
	released := w.expiry.observe(l, w.e.clock.Now())
	w.mu.Unlock()
	select {
	case w.rearm <- struct{}{}:
	default:
	}
	if released {
		w.restart("lease released by its holder")
	}
}

// watchLease starts the Lease watch and its expiry watchdog and waits until
// the watch's first list is in, at most one retry period, so a release after
// that is seen as an update. A release before it shows in the list, and the
// first attempt acquires the free lease at once. If the watch cannot sync (say
// RBAC forbids it) the election still runs, on client-go's retry ticks alone.
func (e *Elector) watchLease(ctx context.Context, log logr.Logger) *leaseWatch {
	w := &leaseWatch{e: e, log: log, expiry: expiry{identity: e.opts.Identity, fallback: e.opts.LeaseDuration}, rearm: make(chan struct{}, 1)}
	lw := cache.NewListWatchFromClient(e.client.CoordinationV1().RESTClient(), "leases", e.opts.Namespace,
		fields.OneTermEqualSelector("metadata.name", e.opts.LeaseName))
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &coordinationv1.Lease{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    w.observe,
			UpdateFunc: func(_, obj any) { w.observe(obj) },
		},
	})
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { informer.RunWithContext(wctx) })
	wg.Go(func() { w.watchdog(wctx) })
	w.stop = func() {
		cancel()
		wg.Wait()
	}
	syncCtx, syncDone := context.WithTimeout(ctx, e.opts.RetryPeriod)
	defer syncDone()
	cache.WaitForCacheSync(syncCtx.Done(), informer.HasSynced)
	return w
}

// watchdog waits for the observed lease to expire and then takes it over.
func (w *leaseWatch) watchdog(ctx context.Context) {
	for {
		w.mu.Lock()
		deadline, armed := w.expiry.next()
		w.mu.Unlock()
		var fire <-chan time.Time
		stopTimer := func() {}
		if armed {
			t := w.e.clock.NewTimer(deadline.Sub(w.e.clock.Now()))
			fire, stopTimer = t.C(), func() { t.Stop() }
		}
		select {
		case <-ctx.Done():
			stopTimer()
			return
		case <-w.rearm:
			stopTimer()
		case <-fire:
			w.mu.Lock()
			l := w.expiry.take(w.e.clock.Now())
			w.mu.Unlock()
			if l != nil {
				w.takeOver(ctx, l)
			}
		}
	}
}

// takeOver writes this identity into the expired lease l, with l's
// resourceVersion as precondition: if anyone wrote the Lease since it was
// observed (the holder renewed, another standby took it), the API server
// answers Conflict and nothing happens.
func (w *leaseWatch) takeOver(ctx context.Context, l *coordinationv1.Lease) {
	ctx, cancel := context.WithTimeout(ctx, w.e.opts.RenewDeadline/2) // as client-go's lock calls
	defer cancel()
	next := l.DeepCopy()
	next.Spec = takeoverSpec(l.Spec, w.e.opts.Identity, w.e.opts.LeaseDuration, w.e.clock.Now())
	_, err := w.e.client.CoordinationV1().Leases(l.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	switch {
	case err == nil:
		w.log.Info("Lease expired: took it over", "previousHolder", holderOf(l))
		w.restart("took over the expired lease")
	case apierrors.IsConflict(err):
		w.log.V(1).Info("Lease changed before it could be taken over", "previousHolder", holderOf(l))
	default:
		// The retry ticks of client-go's elector try again.
		w.log.Info("Could not take over the expired lease", "previousHolder", holderOf(l), "error", err.Error())
	}
}

// takeoverSpec is the Lease spec client-go writes when it acquires a lease
// from another holder.
func takeoverSpec(old coordinationv1.LeaseSpec, identity string, leaseDuration time.Duration, now time.Time) coordinationv1.LeaseSpec {
	prev := resourcelock.LeaseSpecToLeaderElectionRecord(&old)
	return resourcelock.LeaderElectionRecordToLeaseSpec(&resourcelock.LeaderElectionRecord{
		HolderIdentity:       identity,
		LeaseDurationSeconds: int(leaseDuration / time.Second),
		AcquireTime:          metav1.NewTime(now),
		RenewTime:            metav1.NewTime(now),
		LeaderTransitions:    prev.LeaderTransitions + 1,
	})
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// expiry applies client-go's expiry rule to the Lease as the watch shows it:
// a lease held by another identity expires its leaseDurationSeconds after this
// process last saw its record change, measured on the local clock, so clock
// skew between replicas does not matter. Because the watch delivers every
// renewal when it happens, rather than at the next jittered retry tick, the
// expiry is known to within the watch's latency.
type expiry struct {
	identity string
	// fallback is the lease duration when the record has none.
	fallback time.Duration
	// lease is the last observed Lease while another identity holds it and
	// no takeover of it was tried; nil otherwise.
	lease *coordinationv1.Lease
	// deadline is when lease expires.
	deadline time.Time
}

// observe records l, seen at now, and reports whether it is released.
func (x *expiry) observe(l *coordinationv1.Lease, now time.Time) (released bool) {
	switch holderOf(l) {
	case "":
		x.lease = nil
		return true
	case x.identity:
		x.lease = nil
	default:
		// Only a changed record restarts the clock: a relist or a change of
		// the metadata alone is no renewal.
		if x.lease == nil || !apiequality.Semantic.DeepEqual(x.lease.Spec, l.Spec) {
			d := x.fallback
			if s := l.Spec.LeaseDurationSeconds; s != nil && *s > 0 {
				d = time.Duration(*s) * time.Second
			}
			x.deadline = now.Add(d)
		}
		x.lease = l
	}
	return false
}

// next returns when the observed lease expires, if another identity holds it.
func (x *expiry) next() (time.Time, bool) { return x.deadline, x.lease != nil }

// take returns the observed lease if it has expired at now, and forgets it:
// one takeover is tried per observed record.
func (x *expiry) take(now time.Time) *coordinationv1.Lease {
	if x.lease == nil || now.Before(x.deadline) {
		return nil
	}
	l := x.lease
	x.lease = nil
	return l
}
