package informers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// ErrStopped is returned by Acquire after Registry.Stop, and by reads from an
// Informer whose last reference was released.
var ErrStopped = errors.New("informer stopped")

// Options configures a Registry. Either Config or all of Typed, Dynamic and
// Mapper must be set.
type Options struct {
	// Config is used to build the clients that are not given below.
	Config *rest.Config

	// Typed lists and watches built-in resources. Defaults to a clientset of
	// each informer's own, built from Config, that talks protobuf. Clients
	// given here are shared by every informer and their connection is not
	// observed (no watch metrics, logs or reconnect backoff): for tests.
	Typed kubernetes.Interface

	// Dynamic lists and watches custom resources. Defaults to a dynamic client
	// of each informer's own, built from Config; see Typed.
	Dynamic dynamic.Interface

	// Mapper resolves a resource to its kind and scope. When it is a
	// meta.ResettableRESTMapper it is reset once on every miss, so resources
	// installed later are found. Defaults to a discovery-backed mapper built from
	// Config.
	Mapper meta.RESTMapper

	// ResyncPeriod is how often every cached object is re-delivered to the event
	// handlers unchanged. Defaults to 0: no periodic resync. Handlers from
	// engine/handler drop unchanged objects anyway; periodic work belongs to a
	// controller's requeue, not to the cache.
	ResyncPeriod time.Duration

	// Logger receives informer lifecycle and watch error logs. Defaults to
	// logr.Discard().
	Logger logr.Logger

	// ReconnectBackoff spaces an informer's attempts to list or watch while
	// the API server cannot be reached or answers 429 or 5xx; every request
	// starts again from its first step. Defaults to DefaultReconnectBackoff.
	ReconnectBackoff wait.Backoff

	// Clock times the reconnect backoff and the watch metrics. Defaults to
	// clock.RealClock{}.
	Clock clock.Clock

	// Transform, if set, prepares every object after the built-in
	// preparation (kind stamped, managedFields dropped) and before it is
	// cached, as cache.SharedInformer.SetTransform describes: it may modify
	// the object it is given and must not keep it. The engine drops module
	// payloads with it (modules.StripPayload). Defaults to nil: none.
	Transform cache.TransformFunc

	// http is the transport shared by the informers' own clients; typedConfig
	// is Config set up for protobuf.
	http        *http.Client
	typedConfig *rest.Config
}

// protobuf is the content type the typed clientset uses for built-in resources:
// smaller and faster to decode than JSON.
const protobuf = "application/vnd.kubernetes.protobuf"

// complete fills the defaults of o and checks it.
func (o Options) complete() (Options, error) {
	if o.ResyncPeriod < 0 {
		return o, fmt.Errorf("resync period must not be negative, got %s", o.ResyncPeriod)
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.ReconnectBackoff == (wait.Backoff{}) {
		o.ReconnectBackoff = DefaultReconnectBackoff
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Config == nil {
		if o.Typed == nil || o.Dynamic == nil || o.Mapper == nil {
			return o, errors.New("either Config or all of Typed, Dynamic and Mapper must be set")
		}
		return o, nil
	}
	if o.Typed != nil && o.Dynamic != nil {
		return o.completeMapper()
	}
	hc, err := rest.HTTPClientFor(o.Config)
	if err != nil {
		return o, fmt.Errorf("build HTTP client: %w", err)
	}
	o.http = hc
	o.typedConfig = rest.CopyConfig(o.Config)
	if o.typedConfig.ContentType == "" {
		o.typedConfig.ContentType = protobuf
		o.typedConfig.AcceptContentTypes = protobuf + ",application/json"
	}
	// Informers build their clients when they start; find a bad Config now.
	if _, err := kubernetes.NewForConfigAndClient(o.typedConfig, hc); err != nil {
		return o, fmt.Errorf("build clientset: %w", err)
	}
	if _, err := dynamic.NewForConfigAndClient(o.Config, hc); err != nil {
		return o, fmt.Errorf("build dynamic client: %w", err)
	}
	return o.completeMapper()
}

// completeMapper fills the default Mapper.
func (o Options) completeMapper() (Options, error) {
	if o.Mapper == nil {
		disco, err := discovery.NewDiscoveryClientForConfig(o.Config)
		if err != nil {
			return o, fmt.Errorf("build discovery client: %w", err)
		}
		o.Mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
	}
	return o, nil
}

// Registry owns the engine's informers: one per resource, shared and
// reference-counted. It is safe for concurrent use.
type Registry struct {
	opts Options

	mu      sync.Mutex
	entries map[schema.GroupVersionResource]*entry
	stopped bool
}

// entry is one running informer and the number of references to it.
type entry struct {
	informer *Informer
	refs     int
}

// NewRegistry returns an empty Registry; informers start on Acquire.
func NewRegistry(opts Options) (*Registry, error) {
	opts, err := opts.complete()
	if err != nil {
		return nil, fmt.Errorf("informer registry: %w", err)
	}
	return &Registry{opts: opts, entries: map[schema.GroupVersionResource]*entry{}}, nil
}

// Acquire returns the shared informer of gvr, starting it if nobody holds it
// yet, and adds one reference that the caller must give back with Release.
// gvr must name group, version and resource (plural, lower case). A resource
// unknown to discovery is a meta.IsNoMatchError error. The informer runs until
// its last reference is released, independently of ctx, which Acquire only
// checks before it starts. Acquire does not wait for the cache to sync: call
// WaitForSync.
func (r *Registry) Acquire(ctx context.Context, gvr schema.GroupVersionResource) (*Informer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquire informer for %s: %w", resourceName(gvr), err)
	}
	if inf, ok := r.addRef(gvr); ok {
		return inf, nil
	}
	// Resolve outside the lock: a miss refreshes discovery, which is a round trip.
	m, err := resolve(r.opts.Mapper, gvr)
	if err != nil {
		return nil, fmt.Errorf("acquire informer for %s: %w", resourceName(gvr), err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil, fmt.Errorf("acquire informer for %s: %w", resourceName(gvr), ErrStopped)
	}
	if e, ok := r.entries[gvr]; ok { // another caller started it meanwhile
		e.refs++
		return e.informer, nil
	}
	inf, err := newInformer(r.opts, m)
	if err != nil {
		return nil, fmt.Errorf("acquire informer for %s: %w", resourceName(gvr), err)
	}
	inf.start()
	r.entries[gvr] = &entry{informer: inf, refs: 1}
	r.opts.Logger.V(1).Info("informer started", "resource", resourceName(gvr), "kind", m.gvk.Kind, "typed", inf.typed)
	return inf, nil
}

// addRef adds a reference to the running informer of gvr, if there is one.
func (r *Registry) addRef(gvr schema.GroupVersionResource) (*Informer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[gvr]
	if !ok || r.stopped {
		return nil, false
	}
	e.refs++
	return e.informer, true
}

// Release gives back one reference taken by Acquire. Releasing the last one
// stops the informer, waits for its event handlers to return and frees its
// cache. Do not call Release from an event handler of the same informer: it
// would wait for itself. Releasing a resource that is not held is logged and
// otherwise ignored.
func (r *Registry) Release(gvr schema.GroupVersionResource) {
	r.mu.Lock()
	e, ok := r.entries[gvr]
	if !ok {
		r.mu.Unlock()
		r.opts.Logger.Error(nil, "release of an informer that is not held", "resource", resourceName(gvr))
		return
	}
	e.refs--
	if e.refs > 0 {
		r.mu.Unlock()
		return
	}
	delete(r.entries, gvr)
	r.mu.Unlock()

	e.informer.stop()
	r.opts.Logger.V(1).Info("informer stopped", "resource", resourceName(gvr))
}

// Lookup returns the running informer of gvr without taking a reference, for
// cache reads by someone who knows a controller holds it.
func (r *Registry) Lookup(gvr schema.GroupVersionResource) (*Informer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[gvr]
	if !ok {
		return nil, false
	}
	return e.informer, true
}

// Stop stops every informer, waits for them and makes later Acquires fail with
// ErrStopped. It is idempotent.
func (r *Registry) Stop() {
	r.mu.Lock()
	r.stopped = true
	entries := r.entries
	r.entries = map[schema.GroupVersionResource]*entry{}
	r.mu.Unlock()

	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Go(e.informer.stop)
	}
	wg.Wait()
}

// snapshot returns the running informers and their reference counts.
func (r *Registry) snapshot() map[*Informer]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[*Informer]int, len(r.entries))
	for _, e := range r.entries {
		out[e.informer] = e.refs
	}
	return out
}

// resourceName renders gvr as "resource.version.group" ("configmaps.v1" for the
// core group), the form kubectl accepts.
func resourceName(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return gvr.Resource + "." + gvr.Version
	}
	return gvr.Resource + "." + gvr.Version + "." + gvr.Group
}
