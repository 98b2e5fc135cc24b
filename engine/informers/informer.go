package informers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	clientinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/wre-dev/wre/engine/logging"
)

// Informer is the shared cache of one resource. Get it from Registry.Acquire;
// it stays valid until the reference is released. Objects it returns are shared:
// never mutate them, DeepCopy first.
type Informer struct {
	m      mapping
	typed  bool
	shared cache.SharedIndexInformer
	logger logr.Logger
	health *watchHealth // nil when Options gave the client: not observed

	cancel   context.CancelFunc
	done     chan struct{} // closed when the informer's Run has returned
	stopped  chan struct{} // closed when stopping begins
	stopOnce sync.Once
}

// newInformer builds, but does not start, the informer of m: typed when
// client-go's kubernetes scheme knows the kind, dynamic otherwise. Unless
// Options gave the client, the informer gets clients of its own whose
// transport observes its connection (see watchTransport).
func newInformer(opts Options, m mapping) (*Informer, error) {
	inf := &Informer{
		m:       m,
		logger:  opts.Logger.WithValues("resource", resourceName(m.gvr)),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if clientgoscheme.Scheme.Recognizes(m.gvk) {
		client := opts.Typed
		if client == nil {
			var err error
			if client, err = kubernetes.NewForConfigAndClient(opts.typedConfig, inf.observedClient(opts)); err != nil {
				return nil, fmt.Errorf("build clientset: %w", err)
			}
		}
		// A factory per informer, used once and dropped, so that each informer
		// has its own lifetime.
		generic, err := clientinformers.NewSharedInformerFactory(client, opts.ResyncPeriod).ForResource(m.gvr)
		if err == nil {
			inf.shared, inf.typed = generic.Informer(), true
		}
	}
	if inf.shared == nil {
		client := opts.Dynamic
		if client == nil {
			var err error
			if client, err = dynamic.NewForConfigAndClient(opts.Config, inf.observedClient(opts)); err != nil {
				return nil, fmt.Errorf("build dynamic client: %w", err)
			}
		}
		inf.shared = dynamicinformer.NewFilteredDynamicInformer(
			client, m.gvr, metav1.NamespaceAll, opts.ResyncPeriod, cache.Indexers{}, nil).Informer()
	}
	if err := addIndexers(inf.shared); err != nil {
		return nil, fmt.Errorf("add indexers: %w", err)
	}
	if err := inf.shared.SetTransform(cacheTransform(m.gvk, opts.Transform)); err != nil {
		return nil, fmt.Errorf("set transform: %w", err)
	}
	if err := inf.shared.SetWatchErrorHandlerWithContext(inf.watchError); err != nil {
		return nil, fmt.Errorf("set watch error handler: %w", err)
	}
	return inf, nil
}

// watchError replaces client-go's DefaultWatchErrorHandler, which logs every
// failed list or watch as an error, once per retry. Failures that reach the
// reflector are those the transport does not retry (403, 404, a decoding
// error …, or any failure with clients given in Options); they count as the
// watch being down, logged once per outage, and each one at V(2). An expired
// resource version or a closed stream is routine: the reflector lists again.
func (i *Informer) watchError(_ context.Context, _ *cache.Reflector, err error) {
	switch {
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		i.logger.V(2).Info("Watch closed; listing again", "error", err.Error())
	case i.health != nil:
		i.health.failed(err)
	default:
		logging.Warn(i.logger, "Watch failed; retrying", "error", err.Error())
	}
}

// observedClient returns an HTTP client for the informer's own API clients,
// whose transport records the informer's watch health and retries.
func (i *Informer) observedClient(opts Options) *http.Client {
	i.health = newWatchHealth(opts.Clock, i.logger)
	return &http.Client{Timeout: opts.http.Timeout, Transport: &watchTransport{
		base: opts.http.Transport, health: i.health, backoff: opts.ReconnectBackoff, clock: opts.Clock,
	}}
}

// cacheTransform prepares every object before it is cached:
//   - typed objects, which the API server decodes without apiVersion and kind,
//     are stamped with the resource's kind, so cached objects describe
//     themselves;
//   - metadata.managedFields is dropped, as controller-runtime's
//     TransformStripManagedFields does: it is often the larger part of an
//     object, no reconciler needs it, and an update that omits it leaves the
//     server's field ownership unchanged. This shrinks the cache and every
//     object the engine hands to a module. A live read still returns it;
//   - then, if extra is not nil, extra (Options.Transform) has its say.
func cacheTransform(gvk schema.GroupVersionKind, extra cache.TransformFunc) cache.TransformFunc {
	return func(obj any) (any, error) {
		if o, ok := obj.(runtime.Object); ok && o.GetObjectKind().GroupVersionKind().Empty() {
			o.GetObjectKind().SetGroupVersionKind(gvk)
		}
		if o, err := meta.Accessor(obj); err == nil {
			o.SetManagedFields(nil)
		}
		if extra != nil {
			return extra(obj)
		}
		return obj, nil
	}
}

// start runs the informer until stop.
func (i *Informer) start() {
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), i.logger))
	i.cancel = cancel
	go func() {
		defer close(i.done)
		i.shared.RunWithContext(ctx)
	}()
}

// stop stops the informer, waits until it and its handlers have returned, and
// empties its store so the cache can be collected even while someone still
// holds the *Informer. It is idempotent.
func (i *Informer) stop() {
	i.stopOnce.Do(func() {
		close(i.stopped)
		i.cancel()
		<-i.done
		if err := i.shared.GetIndexer().Replace(nil, ""); err != nil {
			i.logger.Error(err, "free informer cache")
		}
	})
}

// alive returns ErrStopped, wrapped with the resource, once stopping has begun.
func (i *Informer) alive() error {
	select {
	case <-i.stopped:
		return fmt.Errorf("%s: %w", resourceName(i.m.gvr), ErrStopped)
	default:
		return nil
	}
}

// GVR returns the resource this informer caches.
func (i *Informer) GVR() schema.GroupVersionResource { return i.m.gvr }

// GVK returns the kind of the cached objects.
func (i *Informer) GVK() schema.GroupVersionKind { return i.m.gvk }

// Namespaced reports whether the resource is namespaced.
func (i *Informer) Namespaced() bool { return i.m.namespaced }

// Typed reports whether cached objects are typed k8s.io/api structs rather than
// *unstructured.Unstructured.
func (i *Informer) Typed() bool { return i.typed }

// HasSynced reports whether the initial list has been stored in the cache.
func (i *Informer) HasSynced() bool { return i.shared.HasSynced() }

// WaitForSync blocks until the initial list is in the cache. It returns ctx's
// error when ctx ends first and ErrStopped when the informer is stopped first.
// An informer whose resource cannot be listed never syncs: bound ctx.
func (i *Informer) WaitForSync(ctx context.Context) error {
	if err := i.alive(); err != nil {
		return err
	}
	select {
	case <-i.shared.HasSyncedChecker().Done():
		return nil
	case <-i.stopped:
		return i.alive()
	case <-ctx.Done():
		return fmt.Errorf("wait for %s cache sync: %w", resourceName(i.m.gvr), ctx.Err())
	}
}

// AddEventHandler registers h for this resource's events. A handler added after
// the cache synced first receives an add (isInInitialList=true) for every cached
// object. Handlers run on one goroutine per handler; a slow handler delays only
// itself. Remove it with RemoveEventHandler before releasing the informer.
func (i *Informer) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	if err := i.alive(); err != nil {
		return nil, fmt.Errorf("add event handler: %w", err)
	}
	reg, err := i.shared.AddEventHandler(h)
	if err != nil {
		return nil, fmt.Errorf("add event handler to %s: %w", resourceName(i.m.gvr), err)
	}
	return reg, nil
}

// RemoveEventHandler unregisters a handler added with AddEventHandler. Removing
// a handler from a stopped informer succeeds.
func (i *Informer) RemoveEventHandler(reg cache.ResourceEventHandlerRegistration) error {
	if err := i.shared.RemoveEventHandler(reg); err != nil {
		return fmt.Errorf("remove event handler from %s: %w", resourceName(i.m.gvr), err)
	}
	return nil
}

// Get returns the cached object namespace/name (name alone for cluster-scoped
// resources), or an apierrors NotFound error when the cache has no such object.
func (i *Informer) Get(namespace, name string) (runtime.Object, error) {
	if err := i.alive(); err != nil {
		return nil, err
	}
	obj, found, err := i.shared.GetIndexer().GetByKey(cache.ObjectName{Namespace: namespace, Name: name}.String())
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s from cache: %w", resourceName(i.m.gvr), namespace, name, err)
	}
	if !found {
		return nil, apierrors.NewNotFound(i.m.gvr.GroupResource(), name)
	}
	return obj.(runtime.Object), nil
}

// ByOwner returns the cached objects with an owner reference to uid, in
// namespace/name order.
func (i *Informer) ByOwner(uid types.UID) ([]runtime.Object, error) {
	if err := i.alive(); err != nil {
		return nil, err
	}
	objs, err := i.shared.GetIndexer().ByIndex(indexOwner, string(uid))
	if err != nil {
		return nil, fmt.Errorf("list %s by owner %s: %w", resourceName(i.m.gvr), uid, err)
	}
	items, err := sortByName(objs)
	if err != nil {
		return nil, fmt.Errorf("list %s by owner %s: %w", resourceName(i.m.gvr), uid, err)
	}
	return items.objects(), nil
}

// List returns the cached objects in namespace (all namespaces when empty) that
// match opts.LabelSelector and opts.FieldSelector, ordered by namespace and
// name, at most opts.Limit of them (all when 0), starting after opts.Continue.
// When more remain, the returned continue token fetches the next page. The
// field selector may only use metadata.name and metadata.namespace; other
// fields, malformed selectors, a negative limit or an invalid token are
// apierrors BadRequest errors. Other ListOptions fields are ignored: the cache
// always serves its latest state.
func (i *Informer) List(namespace string, opts metav1.ListOptions) ([]runtime.Object, string, error) {
	if err := i.alive(); err != nil {
		return nil, "", err
	}
	return list(i.shared.GetIndexer(), i.m.gvr.GroupResource(), namespace, opts)
}

// objectMeta returns obj's metadata or an error naming its type.
func objectMeta(obj any) (metav1.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("cached object %T has no metadata: %w", obj, err)
	}
	return m, nil
}
