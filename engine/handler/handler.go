package handler

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/wre-dev/wre/engine/queue"
	"github.com/wre-dev/wre/host/reconcile"
)

// Enqueuer receives the requests a handler derives from events; a controller's
// priority queue is one.
type Enqueuer interface {
	AddWithPriority(req reconcile.Request, p queue.Priority)
}

// Predicate filters update events: it returns false to drop the update from
// oldObj to newObj. Predicates see neither adds nor deletes.
type Predicate func(oldObj, newObj metav1.Object) bool

// GenerationChanged keeps only updates that change metadata.generation, so
// status-only and metadata-only updates are ignored. Use it only for resources
// whose API server maintains generation (custom resources with a status
// subresource, most workloads); for others (ConfigMaps, Secrets) it drops every
// update.
func GenerationChanged() Predicate {
	return func(oldObj, newObj metav1.Object) bool {
		return oldObj.GetGeneration() != newObj.GetGeneration()
	}
}

// Option configures a handler. A Predicate is an Option.
type Option interface {
	apply(*config)
}

// config is what the options set.
type config struct {
	predicates         []Predicate
	enqueueResyncs     bool
	ownerClusterScoped bool
}

func (p Predicate) apply(c *config) { c.predicates = append(c.predicates, p) }

// optionFunc adapts a function to Option.
type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// EnqueueResyncs enqueues resyncs (updates that change nothing: informer
// resyncs and relists after a watch expired) at queue.PriorityLow instead of
// dropping them. Predicates do not see resyncs.
func EnqueueResyncs() Option {
	return optionFunc(func(c *config) { c.enqueueResyncs = true })
}

// OwnerClusterScoped tells ForOwner that the owner kind is cluster-scoped, so
// its requests carry no namespace. Without it owners are taken to live in the
// namespace of the owned object, as namespaced owners must. ForObject ignores it.
func OwnerClusterScoped() Option {
	return optionFunc(func(c *config) { c.ownerClusterScoped = true })
}

// ForObject returns an event handler that enqueues a request for the object of
// every event: for the controller's primary resource.
func ForObject(q Enqueuer, opts ...Option) cache.ResourceEventHandler {
	return newHandler(q, opts, func(_ config, obj metav1.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}}}
	})
}

// ForOwner returns an event handler that enqueues a request for every owner of
// the event's object whose kind matches owner: same group and kind, any
// version (owner references keep the version they were written with). With
// onlyController only the owner reference marked controller counts. An update
// that changes the owners enqueues the old and the new ones, whatever the
// predicates say.
func ForOwner(q Enqueuer, owner schema.GroupVersionKind, onlyController bool, opts ...Option) cache.ResourceEventHandler {
	return newHandler(q, opts, func(c config, obj metav1.Object) []reconcile.Request {
		var reqs []reconcile.Request
		for _, ref := range obj.GetOwnerReferences() {
			if ref.Kind != owner.Kind || (onlyController && (ref.Controller == nil || !*ref.Controller)) {
				continue
			}
			gv, err := schema.ParseGroupVersion(ref.APIVersion)
			if err != nil || gv.Group != owner.Group {
				continue
			}
			req := reconcile.Request{NamespacedName: types.NamespacedName{Name: ref.Name}}
			if !c.ownerClusterScoped {
				req.Namespace = obj.GetNamespace()
			}
			reqs = append(reqs, req)
		}
		return reqs
	})
}

// eventHandler turns events into requests through mapFn.
type eventHandler struct {
	q      Enqueuer
	cfg    config
	mapObj func(config, metav1.Object) []reconcile.Request
}

var _ cache.ResourceEventHandler = (*eventHandler)(nil)

// newHandler applies opts and returns the handler.
func newHandler(q Enqueuer, opts []Option, mapObj func(config, metav1.Object) []reconcile.Request) *eventHandler {
	h := &eventHandler{q: q, mapObj: mapObj}
	for _, o := range opts {
		o.apply(&h.cfg)
	}
	return h
}

// OnAdd enqueues the object's requests: at PriorityLow while the initial list is
// delivered, at PriorityNormal for objects created later.
func (h *eventHandler) OnAdd(obj any, isInInitialList bool) {
	m, ok := accessor(obj, "add")
	if !ok {
		return
	}
	p := queue.PriorityNormal
	if isInInitialList {
		p = queue.PriorityLow
	}
	h.enqueue(p, h.mapObj(h.cfg, m))
}

// OnUpdate enqueues at PriorityNormal the requests of the old and the new
// object. An update that keeps the resourceVersion is a resync: dropped, or
// enqueued at PriorityLow with EnqueueResyncs. Other updates pass the
// predicates unless they change the requests.
func (h *eventHandler) OnUpdate(oldObj, newObj any) {
	oldMeta, ok := accessor(oldObj, "update")
	if !ok {
		return
	}
	newMeta, ok := accessor(newObj, "update")
	if !ok {
		return
	}
	newReqs := h.mapObj(h.cfg, newMeta)
	if oldMeta.GetResourceVersion() == newMeta.GetResourceVersion() {
		if h.cfg.enqueueResyncs {
			h.enqueue(queue.PriorityLow, newReqs)
		}
		return
	}
	oldReqs := h.mapObj(h.cfg, oldMeta)
	if equalRequests(oldReqs, newReqs) && !h.pass(oldMeta, newMeta) {
		return
	}
	h.enqueue(queue.PriorityNormal, append(oldReqs, newReqs...))
}

// OnDelete enqueues the requests of the deleted object at PriorityNormal; it
// unwraps the tombstone of a delete the informer missed.
func (h *eventHandler) OnDelete(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	m, ok := accessor(obj, "delete")
	if !ok {
		return
	}
	h.enqueue(queue.PriorityNormal, h.mapObj(h.cfg, m))
}

// pass reports whether every predicate keeps the update.
func (h *eventHandler) pass(oldObj, newObj metav1.Object) bool {
	for _, p := range h.cfg.predicates {
		if !p(oldObj, newObj) {
			return false
		}
	}
	return true
}

// enqueue adds each distinct request of reqs once.
func (h *eventHandler) enqueue(p queue.Priority, reqs []reconcile.Request) {
	seen := make(map[reconcile.Request]bool, len(reqs))
	for _, r := range reqs {
		if !seen[r] {
			seen[r] = true
			h.q.AddWithPriority(r, p)
		}
	}
}

// equalRequests reports whether a and b hold the same requests, in any order.
func equalRequests(a, b []reconcile.Request) bool {
	set := make(map[reconcile.Request]bool, len(a))
	for _, r := range a {
		set[r] = true
	}
	other := make(map[reconcile.Request]bool, len(b))
	for _, r := range b {
		if !set[r] {
			return false
		}
		other[r] = true
	}
	return len(other) == len(set)
}

// accessor returns obj's metadata, reporting an object without any (a bug in
// the informer's setup, never expected) to client-go's error handlers.
func accessor(obj any, event string) (metav1.Object, bool) {
	m, err := meta.Accessor(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("%s event for %T without object metadata: %w", event, obj, err))
		return nil, false
	}
	return m, true
}
