package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/wre-dev/wre/engine/controller"
	"github.com/wre-dev/wre/engine/handler"
	"github.com/wre-dev/wre/engine/informers"
	"github.com/wre-dev/wre/engine/queue"
	"github.com/wre-dev/wre/host/reconcile"
)

// ControllerSpec describes a controller for AddController.
type ControllerSpec struct {
	// Name identifies the controller; unique within the manager. Required.
	Name string
	// Reconciler reconciles the requests. Required.
	Reconciler reconcile.Reconciler
	// For is the primary resource: each of its events enqueues the object
	// itself. Required.
	For schema.GroupVersionResource
	// Owns lists resources whose objects are owned by For objects: each event
	// enqueues the controlling owner (through the controller owner reference).
	Owns []schema.GroupVersionResource
	// Watches lists further resources with their own mapping to requests.
	Watches []Watch
	// Predicates filter the update events of For and Owns.
	Predicates []handler.Predicate
	// MaxConcurrentReconciles defaults to 1.
	MaxConcurrentReconciles int
	// ReconcileTimeout defaults to controller.DefaultReconcileTimeout (1 m);
	// controller.NoReconcileTimeout disables it.
	ReconcileTimeout time.Duration
	// RateLimiter defaults to queue.DefaultRateLimiter.
	RateLimiter workqueue.TypedRateLimiter[reconcile.Request]
}

// Watch maps the events of one resource to requests of the controller.
type Watch struct {
	// Resource to watch. Required.
	Resource schema.GroupVersionResource
	// Handler builds the event handler that feeds the controller's queue, for
	// example with handler.ForOwner. Required.
	Handler func(q handler.Enqueuer) cache.ResourceEventHandler
}

// managed is a controller with the informers it holds.
type managed struct {
	spec    ControllerSpec
	ctrl    *controller.Controller
	watched []watched
}

type watched struct {
	gvr      schema.GroupVersionResource
	informer *informers.Informer
	reg      cache.ResourceEventHandlerRegistration
}

// AddController creates a controller from spec. If the manager runs, the
// controller's informers are acquired and its handlers registered at once, and
// its workers start (after its caches sync) when the manager leads.
func (m *Manager) AddController(ctx context.Context, spec ControllerSpec) error {
	if err := validate(spec); err != nil {
		return fmt.Errorf("add controller %q: %w", spec.Name, err)
	}
	ctrl, err := controller.New(spec.Reconciler, controller.Options{
		Name:                    spec.Name,
		MaxConcurrentReconciles: spec.MaxConcurrentReconciles,
		ReconcileTimeout:        spec.ReconcileTimeout,
		RateLimiter:             spec.RateLimiter,
		Clock:                   m.opts.Clock,
		Logger:                  m.log,
		Metrics:                 m.metrics,
	})
	if err != nil {
		return fmt.Errorf("add controller %q: %w", spec.Name, err)
	}
	c := &managed{spec: spec, ctrl: ctrl}

	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.controllers[spec.Name]; ok || m.state == stateStopping {
		_ = ctrl.Stop(ctx)
		if ok {
			return fmt.Errorf("add controller %q: a controller with this name exists", spec.Name)
		}
		return fmt.Errorf("add controller %q: manager is shutting down", spec.Name)
	}
	if m.state == stateRunning {
		if err := m.wire(ctx, c); err != nil {
			_ = ctrl.Stop(ctx)
			m.metrics.RemoveController(spec.Name)
			return fmt.Errorf("add controller %q: %w", spec.Name, err)
		}
		if m.leadCtx != nil && m.leadCtx.Err() == nil {
			m.startWorkers(c)
		}
	}
	m.controllers[spec.Name] = c
	m.log.Info("Added controller", "controller", spec.Name, "for", spec.For.String())
	return nil
}

func validate(spec ControllerSpec) error {
	switch {
	case spec.Name == "":
		return errors.New("spec.Name is required")
	case spec.Reconciler == nil:
		return errors.New("spec.Reconciler is required")
	case spec.For.Resource == "" || spec.For.Version == "":
		return errors.New("spec.For must name a version and a resource")
	}
	for _, w := range spec.Watches {
		if w.Handler == nil || w.Resource.Resource == "" {
			return fmt.Errorf("watch of %q needs a Resource and a Handler", w.Resource)
		}
	}
	return nil
}

// RemoveController stops the named controller's workers, letting in-flight
// reconciles finish within the graceful shutdown timeout, and releases its
// informers and metric series.
func (m *Manager) RemoveController(ctx context.Context, name string) error {
	m.mu.Lock()
	c, ok := m.controllers[name]
	delete(m.controllers, name)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("remove controller %q: no such controller", name)
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.GracefulShutdownTimeout)
	defer cancel()
	err := m.stopController(ctx, c)
	m.metrics.RemoveController(name)
	m.log.Info("Removed controller", "controller", name)
	return err
}

// RequeueAll adds a request for every cached object of the named
// controller's primary resource at queue.PriorityLow, bypassing its
// predicates, and returns how many it added. The registry calls it after it
// swaps a new module version into a running controller, so every object ends
// in the state the new version computes, without delaying live events. A
// controller that is not wired yet (the manager has not started) has nothing
// cached and gets nothing: its initial list will enqueue every object anyway.
func (m *Manager) RequeueAll(name string) (int, error) {
	m.mu.Lock()
	c, ok := m.controllers[name]
	var primary *informers.Informer
	if ok && len(c.watched) > 0 {
		primary = c.watched[0].informer // wire watches For first
	}
	m.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("requeue controller %q: no such controller", name)
	}
	if primary == nil {
		return 0, nil
	}
	objs, _, err := primary.List(metav1.NamespaceAll, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("requeue controller %q: %w", name, err)
	}
	for _, obj := range objs {
		o, err := meta.Accessor(obj)
		if err != nil {
			return 0, fmt.Errorf("requeue controller %q: %w", name, err)
		}
		c.ctrl.AddWithPriority(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}, queue.PriorityLow)
	}
	return len(objs), nil
}

// stopController stops c's workers gracefully and releases its informers.
func (m *Manager) stopController(ctx context.Context, c *managed) error {
	err := c.ctrl.Stop(ctx)
	m.unwire(c)
	if err != nil {
		return fmt.Errorf("stop controller %q: %w", c.spec.Name, err)
	}
	return nil
}

// wire acquires c's informers and registers its handlers; on failure it undoes
// what it did. The caller holds m.mu.
func (m *Manager) wire(ctx context.Context, c *managed) error {
	preds := make([]handler.Option, len(c.spec.Predicates))
	for i, p := range c.spec.Predicates {
		preds[i] = p
	}
	primary, err := m.watch(ctx, c, c.spec.For, func(*informers.Informer) cache.ResourceEventHandler {
		return handler.ForObject(c.ctrl, preds...)
	})
	if err != nil {
		return err
	}
	ownerOpts := preds
	if !primary.Namespaced() {
		ownerOpts = append(ownerOpts, handler.OwnerClusterScoped())
	}
	for _, gvr := range c.spec.Owns {
		if _, err := m.watch(ctx, c, gvr, func(*informers.Informer) cache.ResourceEventHandler {
			return handler.ForOwner(c.ctrl, primary.GVK(), true, ownerOpts...)
		}); err != nil {
			return err
		}
	}
	for _, w := range c.spec.Watches {
		if _, err := m.watch(ctx, c, w.Resource, func(*informers.Informer) cache.ResourceEventHandler {
			return w.Handler(c.ctrl)
		}); err != nil {
			return err
		}
	}
	return nil
}

// watch acquires the informer of gvr for c and registers the handler built by
// h; on failure it unwires c.
func (m *Manager) watch(ctx context.Context, c *managed, gvr schema.GroupVersionResource, h func(*informers.Informer) cache.ResourceEventHandler) (*informers.Informer, error) {
	inf, err := m.informers.Acquire(ctx, gvr)
	if err != nil {
		m.unwire(c)
		return nil, fmt.Errorf("acquire informer %s: %w", gvr, err)
	}
	reg, err := inf.AddEventHandler(h(inf))
	if err != nil {
		m.informers.Release(gvr)
		m.unwire(c)
		return nil, fmt.Errorf("watch %s: %w", gvr, err)
	}
	c.watched = append(c.watched, watched{gvr: gvr, informer: inf, reg: reg})
	return inf, nil
}

// unwire removes c's handlers and releases its informers.
func (m *Manager) unwire(c *managed) {
	for _, w := range c.watched {
		if err := w.informer.RemoveEventHandler(w.reg); err != nil {
			m.log.V(1).Info("Remove event handler", "controller", c.spec.Name, "resource", w.gvr.String(), "error", err.Error())
		}
		m.informers.Release(w.gvr)
	}
	c.watched = nil
}

// startWorkers starts c's workers under the leadership context once its
// informers have synced. The caller holds m.mu.
func (m *Manager) startWorkers(c *managed) {
	ctx := m.leadCtx
	infs := make([]*informers.Informer, len(c.watched))
	for i, w := range c.watched {
		infs[i] = w.informer
	}
	m.workers.Go(func() {
		// A controller removed before its caches synced must not keep waiting.
		syncCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-c.ctrl.Done():
				cancel()
			case <-syncCtx.Done():
			}
		}()
		for _, inf := range infs {
			if err := inf.WaitForSync(syncCtx); err != nil {
				m.log.Info("Workers not started: caches did not sync", "controller", c.spec.Name, "error", err.Error())
				return
			}
		}
		if err := c.ctrl.Start(ctx); err != nil && !errors.Is(err, controller.ErrStarted) {
			m.log.Error(err, "Workers failed", "controller", c.spec.Name)
		}
	})
}
