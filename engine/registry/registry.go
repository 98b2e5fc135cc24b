package registry

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	kinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/wre-dev/wre/engine/informers"
	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host"
)

// Event reasons on module ConfigMaps.
const (
	ReasonLoaded     = "Loaded"
	ReasonLoadFailed = "LoadFailed"
)

// States of a module in Status.
const (
	// StateLoaded: a version runs and the last load attempt succeeded.
	StateLoaded = "Loaded"
	// StateLoadFailed: the last load attempt failed; Status.Digest names the
	// version still running, if any.
	StateLoadFailed = "LoadFailed"
)

// DefaultSettleDelay is how long the registry waits after a change to a
// module's ConfigMaps before loading, so that the parts of one apply arrive
// together.
const DefaultSettleDelay = 500 * time.Millisecond

// DefaultLoadWorkers is how many modules load at once unless
// Options.LoadWorkers says otherwise.
const DefaultLoadWorkers = 4

// DefaultIncompleteTimeout is how long the registry waits for a set of
// ConfigMaps with missing parts or parts of two versions to complete before
// it reports LoadFailed.
const DefaultIncompleteTimeout = 30 * time.Second

// Controllers runs module controllers; *manager.Manager is one.
type Controllers interface {
	AddController(ctx context.Context, spec manager.ControllerSpec) error
	RemoveController(ctx context.Context, name string) error
	// RequeueAll enqueues every cached primary object of the named
	// controller at low priority.
	RequeueAll(name string) (int, error)
}

// Informers is the shared informer registry; *informers.Registry is one.
type Informers interface {
	Acquire(ctx context.Context, gvr schema.GroupVersionResource) (*informers.Informer, error)
	Release(gvr schema.GroupVersionResource)
	Lookup(gvr schema.GroupVersionResource) (*informers.Informer, bool)
}

// Options configure a Registry.
type Options struct {
	// Namespace is the only namespace whose module ConfigMaps are loaded.
	// Required.
	Namespace string
	// Client watches the module ConfigMaps and records events. Required.
	Client kubernetes.Interface
	// DynamicClient serves the modules' live reads and writes. Required.
	DynamicClient dynamic.Interface
	// Config builds the impersonating clients of modules that name a
	// serviceAccountName. Defaults to nil: such modules fail to load.
	Config *rest.Config
	// Controllers runs the module controllers. Required.
	Controllers Controllers
	// Informers serves the modules' cached reads and keeps shared informers
	// alive while a controller is replaced. Defaults to nil: every read is
	// live and owners of watched objects are taken to be namespaced.
	Informers Informers
	// Runtime compiles and runs the wasm. Required.
	Runtime *host.Runtime
	// Policy caps the modules' permissions and limits. Defaults to
	// modules.AllowAll.
	Policy *modules.Policy
	// MaxWasmBytes bounds the uncompressed wasm. Defaults to
	// modules.DefaultMaxWasmBytes (64 MiB).
	MaxWasmBytes int64
	// LoadWorkers is how many modules load (compile, instantiate, start) at
	// once, so a slow or stuck module (an _initialize running into its init
	// timeout) delays only itself. Defaults to DefaultLoadWorkers (4).
	LoadWorkers int
	// SettleDelay defers a load after a change. Defaults to
	// DefaultSettleDelay (500 ms).
	SettleDelay time.Duration
	// IncompleteTimeout is how long an incomplete set may stay so before it
	// is reported. Defaults to DefaultIncompleteTimeout (30 s).
	IncompleteTimeout time.Duration
	// Metrics receives the registry metrics. Defaults to a set registered
	// nowhere.
	Metrics *Metrics
	// Recorder records Loaded and LoadFailed on the module ConfigMaps and the
	// modules' own events. Defaults to one that writes Events through Client.
	Recorder record.EventRecorder
	// MemoSize bounds the read sets each memoized module holds. Defaults to
	// memo.DefaultSize.
	MemoSize int
	// Logger defaults to logr.Discard().
	Logger logr.Logger
	// Clock measures load times. Defaults to the real clock.
	Clock clock.PassiveClock
}

// Registry loads, swaps and unloads the modules shipped in ConfigMaps; see the
// package documentation.
type Registry struct {
	opts        Options
	broadcaster record.EventBroadcaster // the default Recorder's; Start shuts it down
	log         logr.Logger
	queue       workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	modules map[string]*entry
	stopped sync.WaitGroup // versions closing in the background
}

// entry is the state of one module.
type entry struct {
	name      string
	slot      *slot             // nil until a version runs
	manifest  *modules.Manifest // of the running version
	state     string
	lastError string
	failedSet string // the ConfigMap versions of the last failed attempt
	// incompleteSince is when the module's set was first seen incomplete.
	incompleteSince time.Time
	loadedAt        time.Time
}

// New validates opts and fills their defaults.
func New(opts Options) (*Registry, error) {
	switch {
	case opts.Namespace == "":
		return nil, errors.New("new module registry: Namespace is required")
	case opts.Client == nil || opts.DynamicClient == nil:
		return nil, errors.New("new module registry: Client and DynamicClient are required")
	case opts.Controllers == nil:
		return nil, errors.New("new module registry: Controllers is required")
	case opts.Runtime == nil:
		return nil, errors.New("new module registry: Runtime is required")
	}
	if opts.Policy == nil {
		opts.Policy = modules.AllowAll
	}
	if opts.LoadWorkers <= 0 {
		opts.LoadWorkers = DefaultLoadWorkers
	}
	if opts.SettleDelay <= 0 {
		opts.SettleDelay = DefaultSettleDelay
	}
	if opts.IncompleteTimeout <= 0 {
		opts.IncompleteTimeout = DefaultIncompleteTimeout
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil)
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	var broadcaster record.EventBroadcaster
	if opts.Recorder == nil {
		broadcaster = record.NewBroadcaster()
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: opts.Client.CoreV1().Events("")})
		opts.Recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "wre"})
	}
	return &Registry{
		broadcaster: broadcaster,
		opts:        opts,
		log:         opts.Logger.WithName("modules"),
		queue:       workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "wre-modules"}),
		modules:     map[string]*entry{},
	}, nil
}

// Start watches the module ConfigMaps and loads, swaps and unloads modules
// until ctx ends; then it closes every version once its in-flight reconciles
// have finished (the controllers themselves stop with the manager). It
// returns an error if the ConfigMaps cannot be watched.
func (r *Registry) Start(ctx context.Context) error {
	factory := kinformers.NewSharedInformerFactoryWithOptions(r.opts.Client, 0,
		kinformers.WithNamespace(r.opts.Namespace),
		kinformers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = modules.LabelModule }))
	cms := factory.Core().V1().ConfigMaps()
	// The informer only tells which module changed: its cache keeps no wasm,
	// sync reads the parts from the API server when it loads them.
	if err := cms.Informer().SetTransform(modules.StripPayload); err != nil {
		return fmt.Errorf("start module registry: %w", err)
	}
	if _, err := cms.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: r.enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			r.enqueue(oldObj)
			r.enqueue(newObj)
		},
		DeleteFunc: r.enqueue,
	}); err != nil {
		return fmt.Errorf("start module registry: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	defer r.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), cms.Informer().HasSynced) {
		return fmt.Errorf("start module registry: ConfigMaps of namespace %s did not sync: %w", r.opts.Namespace, ctx.Err())
	}
	r.log.Info("Watching module ConfigMaps", "namespace", r.opts.Namespace, "selector", modules.LabelModule)
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	// The work queue never hands one module to two workers at once.
	var workers sync.WaitGroup
	for range r.opts.LoadWorkers {
		workers.Go(func() {
			for r.processNext(ctx) {
			}
		})
	}
	workers.Wait()
	r.closeAll()
	if r.broadcaster != nil {
		r.broadcaster.Shutdown() // flushes the events recorded so far
	}
	return nil
}

// enqueue schedules the module of a ConfigMap event.
func (r *Registry) enqueue(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Labels[modules.LabelModule] != "" {
		r.queue.AddAfter(cm.Labels[modules.LabelModule], r.opts.SettleDelay)
	}
}

func (r *Registry) processNext(ctx context.Context) bool {
	name, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(name)
	if err := r.sync(ctx, name); err != nil {
		r.log.Info("Retrying module load", "module", name, "error", err.Error())
		r.queue.AddRateLimited(name)
		return true
	}
	r.queue.Forget(name)
	return true
}

// loadError is a failed load attempt: reason says which step failed;
// transient ones are retried.
type loadError struct {
	reason    string
	transient bool
	err       error
}

func (e *loadError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// sync brings module name to the state its ConfigMaps describe. It reads
// them from the API server, not from the informer's cache, which holds no
// wasm: the compressed and the decompressed wasm live only while a version
// loads, and afterwards the registry keeps its manifest and digest alone.
func (r *Registry) sync(ctx context.Context, name string) error {
	cms, err := r.parts(ctx, name)
	if err != nil {
		return err
	}
	if len(cms) == 0 {
		r.unload(ctx, name)
		return nil
	}
	e := r.entry(name)
	set := setKey(cms)
	if e.failedSet == set {
		return nil // this very set failed already and was reported
	}
	start := r.opts.Clock.Now()
	m, wasm, err := modules.Assemble(cms, modules.AssembleOptions{MaxWasmBytes: r.opts.MaxWasmBytes})
	if errors.Is(err, modules.ErrIncomplete) {
		// Parts of one apply arrive one by one: wait for the rest.
		if e.incompleteSince.IsZero() {
			e.incompleteSince = start
		}
		if r.opts.Clock.Since(e.incompleteSince) < r.opts.IncompleteTimeout {
			r.queue.AddAfter(name, r.opts.SettleDelay)
			return nil
		}
	}
	e.incompleteSince = time.Time{}
	if err != nil {
		return r.fail(e, target(cms), set, &loadError{reason: "InvalidPackage", err: err})
	}
	if e.slot != nil && reflect.DeepEqual(e.manifest, m) {
		r.setState(e, StateLoaded, "", "")
		return nil // already running
	}
	v, err := r.prepare(ctx, m, wasm)
	if err != nil {
		return r.fail(e, target(cms), set, err)
	}
	prev := e.version()
	if err := r.install(ctx, e, m, v); err != nil {
		v.close(ctx)
		return r.fail(e, target(cms), set, err)
	}
	took := r.opts.Clock.Since(start)
	r.setState(e, StateLoaded, "", "")
	r.opts.Metrics.Loads.WithLabelValues(name, ResultSuccess).Inc()
	r.opts.Metrics.LoadSeconds.Observe(took.Seconds())
	r.opts.Metrics.running(name, m.Digest, m.ABI)
	msg := fmt.Sprintf("module %s %s (abi %s, %d bytes, %d ConfigMaps) loaded in %s", name, m.Digest, m.ABI, len(wasm), len(cms), took.Round(time.Millisecond))
	if prev != nil {
		msg += ", replacing " + prev.digest
	}
	r.opts.Recorder.Event(target(cms), corev1.EventTypeNormal, ReasonLoaded, msg)
	r.log.Info("Loaded module", "module", name, "digest", m.Digest, "abi", m.ABI, "took", took, "replaced", prev != nil)
	return nil
}

// fail reports a failed attempt; the running version, if any, keeps running.
// It returns err when the attempt should be retried.
func (r *Registry) fail(e *entry, cm *corev1.ConfigMap, set string, err error) error {
	var le *loadError
	if !errors.As(err, &le) {
		le = &loadError{reason: "LoadFailed", transient: true, err: err}
	}
	msg := le.Error()
	if v := e.version(); v != nil {
		msg += "; still running " + v.digest
	}
	failedSet := set
	if le.transient {
		failedSet = ""
	}
	r.setState(e, StateLoadFailed, msg, failedSet)
	r.opts.Metrics.Loads.WithLabelValues(e.name, ResultError).Inc()
	r.opts.Recorder.Event(cm, corev1.EventTypeWarning, ReasonLoadFailed, msg)
	// An error: an operator must act (fix and re-apply the module), unlike
	// the routine lifecycle lines logged at info.
	running := ""
	if v := e.version(); v != nil {
		running = v.digest
	}
	r.log.Error(le.err, "Module load failed", "module", e.name, "version", cm.Annotations[modules.AnnotationDigest], "reason", le.reason, "running", running)
	if le.transient {
		return err
	}
	return nil
}

// prepare checks m against the policy, compiles wasm, checks its ABI and
// instantiates it once, so that a version that cannot start is refused
// before it replaces anything.
func (r *Registry) prepare(ctx context.Context, m *modules.Manifest, wasm []byte) (*version, error) {
	if err := r.opts.Policy.Check(m); err != nil {
		return nil, &loadError{reason: "PolicyViolation", err: err}
	}
	compiled, err := r.opts.Runtime.Compile(ctx, m.Name, wasm)
	if err != nil {
		return nil, &loadError{reason: "CompileFailed", err: err}
	}
	if got := compiled.ABIVersion(); got != m.ABIMarker() {
		_ = compiled.Close(ctx)
		return nil, &loadError{reason: "ABIMismatch", err: fmt.Errorf("manifest says abi %s (%s), the wasm exports %s", m.ABI, m.ABIMarker(), got)}
	}
	opts := r.opts.Policy.Limits.Apply(m.ModuleOptions())
	opts.Recorder = r.opts.Recorder
	opts.Client = r.opts.DynamicClient
	if m.ServiceAccountName != "" {
		if opts.Client, err = r.impersonating(m.ServiceAccountName); err != nil {
			_ = compiled.Close(ctx)
			return nil, &loadError{reason: "InstantiateFailed", err: err}
		}
	}
	if r.opts.Informers != nil {
		opts.Cache = host.CacheFunc(r.cacheReader)
	}
	mod, err := r.opts.Runtime.NewModule(ctx, compiled, opts)
	if err == nil {
		if err = mod.Warm(ctx); err != nil {
			_ = mod.Close(ctx)
		}
	}
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, &loadError{reason: "InstantiateFailed", err: err}
	}
	return r.newVersion(m, compiled, mod), nil
}

// impersonating returns a client acting as the ServiceAccount sa of the
// module namespace.
func (r *Registry) impersonating(sa string) (dynamic.Interface, error) {
	if r.opts.Config == nil {
		return nil, fmt.Errorf("serviceAccountName %q: the engine has no client configuration to impersonate with", sa)
	}
	cfg := rest.CopyConfig(r.opts.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + r.opts.Namespace + ":" + sa}
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("serviceAccountName %q: %w", sa, err)
	}
	return c, nil
}

// cacheReader serves reads of resources some controller watches from the
// shared informer, once it has synced.
func (r *Registry) cacheReader(gvr schema.GroupVersionResource) (host.CacheReader, bool) {
	inf, ok := r.opts.Informers.Lookup(gvr)
	if !ok || !inf.HasSynced() {
		return nil, false
	}
	return inf, true
}

// install makes v the running version of e: it adds the controller of a new
// module, swaps v into the running controller when the watches are
// unchanged, or replaces the controller (holding the informers both share, so
// they are not re-listed) when they changed.
func (r *Registry) install(ctx context.Context, e *entry, m *modules.Manifest, v *version) error {
	if e.slot != nil && sameController(e.manifest, m) {
		prev := e.slot.swap(v)
		r.retire(prev)
		r.mu.Lock()
		e.manifest = m
		e.loadedAt = r.opts.Clock.Now()
		r.mu.Unlock()
		// Every object gets the new version's verdict, at low priority so
		// live events go first. A replaced controller needs no such step: its
		// new handlers receive every cached object.
		if n, err := r.opts.Controllers.RequeueAll(e.name); err != nil {
			r.log.Info("Requeueing the objects of a swapped module", "module", e.name, "error", err.Error())
		} else {
			r.log.V(1).Info("Requeued the objects of a swapped module", "module", e.name, "objects", n)
		}
		return nil
	}
	s := newSlot(v)
	if e.slot != nil {
		s.reconciles.Store(e.slot.reconciles.Load())
		s.errors.Store(e.slot.errors.Load())
	}
	release, scope, err := r.hold(ctx, m)
	if err != nil {
		return &loadError{reason: "StartFailed", transient: true, err: err}
	}
	defer release()
	spec := controllerSpec(m, r.opts.Policy.Limits, s, scope)
	if e.slot != nil {
		if err := r.opts.Controllers.RemoveController(ctx, e.name); err != nil {
			r.log.Info("Removing the controller of the previous version", "module", e.name, "error", err.Error())
		}
		if err := r.opts.Controllers.AddController(ctx, spec); err != nil {
			// Put the previous version back.
			prevSpec := controllerSpec(e.manifest, r.opts.Policy.Limits, e.slot, scope)
			if err2 := r.opts.Controllers.AddController(ctx, prevSpec); err2 != nil {
				r.log.Error(err2, "Restoring the previous version failed", "module", e.name)
			}
			return &loadError{reason: "StartFailed", transient: true, err: err}
		}
		r.retire(e.slot.version())
	} else if err := r.opts.Controllers.AddController(ctx, spec); err != nil {
		return &loadError{reason: "StartFailed", transient: true, err: err}
	}
	r.mu.Lock()
	e.slot, e.manifest, e.loadedAt = s, m, r.opts.Clock.Now()
	r.mu.Unlock()
	return nil
}

// retire closes v once its in-flight reconciles have finished, without
// blocking the registry.
func (r *Registry) retire(v *version) {
	r.stopped.Go(func() { v.close(context.Background()) })
}

// hold acquires the informers of m's controller until release is called, so
// that replacing a controller does not stop and re-list the informers the
// new one shares with the old; it also tells whether m.For is namespaced.
func (r *Registry) hold(ctx context.Context, m *modules.Manifest) (release func(), namespaced bool, err error) {
	if r.opts.Informers == nil {
		return func() {}, true, nil
	}
	var held []schema.GroupVersionResource
	release = func() {
		for _, gvr := range held {
			r.opts.Informers.Release(gvr)
		}
	}
	gvrs := []schema.GroupVersionResource{m.For.GVR()}
	for _, o := range m.Owns {
		gvrs = append(gvrs, o.GVR())
	}
	for _, w := range m.Watches {
		gvrs = append(gvrs, w.GVR())
	}
	for i, gvr := range gvrs {
		inf, err := r.opts.Informers.Acquire(ctx, gvr)
		if err != nil {
			release()
			return nil, false, fmt.Errorf("watch %s: %w", gvr, err)
		}
		held = append(held, gvr)
		if i == 0 {
			namespaced = inf.Namespaced()
		}
	}
	return release, namespaced, nil
}

// unload stops and forgets module name.
func (r *Registry) unload(ctx context.Context, name string) {
	r.mu.Lock()
	e, ok := r.modules[name]
	delete(r.modules, name)
	r.mu.Unlock()
	if !ok {
		return
	}
	if v := e.version(); v != nil {
		if err := r.opts.Controllers.RemoveController(ctx, name); err != nil {
			r.log.Info("Removing controller", "module", name, "error", err.Error())
		}
		v.close(ctx)
	}
	r.opts.Metrics.removeModule(name)
	r.log.Info("Unloaded module", "module", name)
}

// closeAll closes every version at shutdown.
func (r *Registry) closeAll() {
	r.mu.Lock()
	var vs []*version
	for _, e := range r.modules {
		if e.slot != nil {
			vs = append(vs, e.slot.stop())
		}
	}
	r.mu.Unlock()
	for _, v := range vs {
		r.retire(v)
	}
	r.stopped.Wait()
}

func (r *Registry) entry(name string) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.modules[name]
	if !ok {
		e = &entry{name: name}
		r.modules[name] = e
		r.opts.Metrics.initModule(name)
	}
	return e
}

func (r *Registry) setState(e *entry, state, lastError, failedSet string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.state, e.lastError, e.failedSet = state, lastError, failedSet
}

// version returns the running version, or nil.
func (e *entry) version() *version {
	if e.slot == nil {
		return nil
	}
	return e.slot.version()
}
