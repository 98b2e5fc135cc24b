package informers

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

// Bounds of waits for informer goroutines to deliver events.
const (
	waitFor = 10 * time.Second
	tick    = 10 * time.Millisecond
)

var (
	configMapsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	namespacesGVR  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	widgetsGVR     = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	gadgetsGVR     = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gadgets"}
	widgetGVK      = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
	gadgetGVK      = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}
	unservedGVR    = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "unserved"}
	unservedGVK    = schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Unserved"}
	configMapGVK   = corev1.SchemeGroupVersion.WithKind("ConfigMap")
	namespaceGVK   = corev1.SchemeGroupVersion.WithKind("Namespace")
	defaultObjects = []runtime.Object{
		configMap("a", "one", "app", "web"),
		ownedBy(configMap("a", "two"), "owner-uid"),
		configMap("b", "one"),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
	}
)

// widget returns a custom resource namespace/name.
func widget(namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(widgetGVK)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// resettingMapper is a RESTMapper that learns the gadgets resource on its first
// Reset, like discovery after a CRD was installed.
type resettingMapper struct {
	*meta.DefaultRESTMapper
	mu     sync.Mutex
	resets int
}

func (m *resettingMapper) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resets++
	m.Add(gadgetGVK, meta.RESTScopeNamespace)
}

// testOptions returns fake clients holding defaultObjects and two widgets.
func testOptions(t testing.TB) (Options, *resettingMapper) {
	t.Helper()
	mapper := &resettingMapper{DefaultRESTMapper: meta.NewDefaultRESTMapper(nil)}
	mapper.Add(configMapGVK, meta.RESTScopeNamespace)
	mapper.Add(namespaceGVK, meta.RESTScopeRoot)
	mapper.Add(widgetGVK, meta.RESTScopeNamespace)
	mapper.Add(unservedGVK, meta.RESTScopeNamespace)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{widgetsGVR: "WidgetList", gadgetsGVR: "GadgetList", unservedGVR: "UnservedList"},
		widget("a", "w1"), widget("b", "w2"))
	dyn.PrependReactor("list", unservedGVR.Resource, func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("not served")
	})
	return Options{Typed: k8sfake.NewClientset(defaultObjects...), Dynamic: dyn, Mapper: mapper}, mapper
}

// newTestRegistry returns a registry over testOptions, stopped at cleanup.
func newTestRegistry(t *testing.T) (*Registry, *resettingMapper) {
	t.Helper()
	opts, mapper := testOptions(t)
	r, err := NewRegistry(opts)
	require.NoError(t, err)
	t.Cleanup(r.Stop)
	return r, mapper
}

// acquireSynced acquires gvr and waits for its cache.
func acquireSynced(t *testing.T, r *Registry, gvr schema.GroupVersionResource) *Informer {
	t.Helper()
	inf, err := r.Acquire(t.Context(), gvr)
	require.NoError(t, err)
	require.NoError(t, inf.WaitForSync(t.Context()))
	return inf
}

func TestNewRegistryOptions(t *testing.T) {
	full, _ := testOptions(t)
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "nothing", opts: Options{}, wantErr: "either Config or all of Typed, Dynamic and Mapper must be set"},
		{name: "clients without mapper", opts: Options{Typed: full.Typed, Dynamic: full.Dynamic}, wantErr: "either Config"},
		{name: "negative resync", opts: Options{Config: &rest.Config{Host: "https://127.0.0.1:1"}, ResyncPeriod: -1}, wantErr: "resync period must not be negative"},
		{name: "bad config", opts: Options{Config: &rest.Config{Host: "https://127.0.0.1:1", QPS: 1, Burst: 0}}, wantErr: "build clientset"},
		{name: "config", opts: Options{Config: &rest.Config{Host: "https://127.0.0.1:1"}}},
		{name: "config and a given client", opts: Options{Config: &rest.Config{Host: "https://127.0.0.1:1"}, Typed: full.Typed}},
		{name: "clients", opts: full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRegistry(tt.opts)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, r.opts.Mapper)
			assert.Equal(t, r.opts.Typed == nil || r.opts.Dynamic == nil, r.opts.http != nil,
				"informers get clients of their own unless both are given")
			r.Stop()
		})
	}
}

func TestAcquireTypedAndDynamic(t *testing.T) {
	r, _ := newTestRegistry(t)
	tests := []struct {
		name       string
		gvr        schema.GroupVersionResource
		gvk        schema.GroupVersionKind
		typed      bool
		namespaced bool
		namespace  string
		object     string
		wantType   runtime.Object
	}{
		{name: "built-in namespaced", gvr: configMapsGVR, gvk: configMapGVK, typed: true, namespaced: true, namespace: "a", object: "one", wantType: &corev1.ConfigMap{}},
		{name: "built-in cluster-scoped", gvr: namespacesGVR, gvk: namespaceGVK, typed: true, object: "a", wantType: &corev1.Namespace{}},
		{name: "custom resource", gvr: widgetsGVR, gvk: widgetGVK, namespaced: true, namespace: "b", object: "w2", wantType: &unstructured.Unstructured{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inf := acquireSynced(t, r, tt.gvr)
			defer r.Release(tt.gvr)
			assert.True(t, inf.HasSynced())
			assert.Equal(t, tt.gvr, inf.GVR())
			assert.Equal(t, tt.gvk, inf.GVK())
			assert.Equal(t, tt.typed, inf.Typed())
			assert.Equal(t, tt.namespaced, inf.Namespaced())

			obj, err := inf.Get(tt.namespace, tt.object)
			require.NoError(t, err)
			assert.IsType(t, tt.wantType, obj)
			assert.Equal(t, tt.gvk, obj.GetObjectKind().GroupVersionKind(), "cached objects carry their kind")

			_, err = inf.Get(tt.namespace, "missing")
			assert.True(t, apierrors.IsNotFound(err), "want NotFound, got %v", err)
			assert.ErrorContains(t, err, tt.gvr.Resource)
			_, err = inf.Get("elsewhere", tt.object)
			assert.True(t, apierrors.IsNotFound(err), "want NotFound in another namespace, got %v", err)
		})
	}
}

func TestInformerReads(t *testing.T) {
	r, _ := newTestRegistry(t)
	inf := acquireSynced(t, r, configMapsGVR)

	items, token, err := inf.List("", metav1.ListOptions{Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, []string{"a/one", "a/two"}, names(t, items))
	items, token, err = inf.List("", metav1.ListOptions{Limit: 2, Continue: token})
	require.NoError(t, err)
	assert.Equal(t, []string{"b/one"}, names(t, items))
	assert.Empty(t, token)

	items, _, err = inf.List("a", metav1.ListOptions{LabelSelector: "app=web"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a/one"}, names(t, items))

	_, _, err = inf.List("", metav1.ListOptions{FieldSelector: "data.x=y"})
	assert.True(t, apierrors.IsBadRequest(err))

	owned, err := inf.ByOwner("owner-uid")
	require.NoError(t, err)
	assert.Equal(t, []string{"a/two"}, names(t, owned))
	owned, err = inf.ByOwner("nobody")
	require.NoError(t, err)
	assert.Empty(t, owned)
}

// TestOptionsTransform: Options.Transform sees every object after the
// built-in preparation, and what it returns is what the cache holds.
func TestOptionsTransform(t *testing.T) {
	opts, _ := testOptions(t)
	opts.Transform = func(obj any) (any, error) {
		cm := obj.(*corev1.ConfigMap)
		require.NotEmpty(t, cm.Kind, "runs after the kind is stamped")
		cm.Annotations = map[string]string{"seen": "yes"}
		return cm, nil
	}
	r, err := NewRegistry(opts)
	require.NoError(t, err)
	t.Cleanup(r.Stop)
	inf := acquireSynced(t, r, configMapsGVR)
	items, _, err := inf.List("", metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, items, 3)
	for _, obj := range items {
		assert.Equal(t, "yes", obj.(*corev1.ConfigMap).Annotations["seen"])
	}
}

func TestReleaseLastReferenceFreesTheCache(t *testing.T) {
	r, _ := newTestRegistry(t)
	first := acquireSynced(t, r, configMapsGVR)
	second := acquireSynced(t, r, configMapsGVR)
	require.Same(t, first, second, "one informer per resource")
	assert.Equal(t, map[*Informer]int{first: 2}, r.snapshot())

	r.Release(configMapsGVR)
	got, ok := r.Lookup(configMapsGVR)
	require.True(t, ok, "one reference is left")
	assert.Same(t, first, got)
	_, err := first.Get("a", "one")
	require.NoError(t, err, "still readable")

	r.Release(configMapsGVR)
	_, ok = r.Lookup(configMapsGVR)
	assert.False(t, ok)
	assert.Empty(t, r.snapshot())
	assert.Empty(t, first.shared.GetIndexer().ListKeys(), "the store is freed")
	assert.Empty(t, first.shared.GetIndexer().ListIndexFuncValues(indexNamespace), "the indexes are freed")
	assert.True(t, first.shared.IsStopped())

	// A holder of the stale pointer gets an error, not stale data.
	_, err = first.Get("a", "one")
	assert.ErrorIs(t, err, ErrStopped)
	_, _, err = first.List("", metav1.ListOptions{})
	assert.ErrorIs(t, err, ErrStopped)
	_, err = first.ByOwner("owner-uid")
	assert.ErrorIs(t, err, ErrStopped)
	assert.ErrorIs(t, first.WaitForSync(t.Context()), ErrStopped)
	_, err = first.AddEventHandler(cache.ResourceEventHandlerFuncs{})
	assert.ErrorIs(t, err, ErrStopped)

	// Acquiring again starts a fresh informer that lists again.
	third := acquireSynced(t, r, configMapsGVR)
	assert.NotSame(t, first, third)
	_, err = third.Get("a", "one")
	assert.NoError(t, err)
}

func TestAcquireReleaseConcurrently(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, _ := newTestRegistry(t)
	const workers, rounds = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			gvr := []schema.GroupVersionResource{configMapsGVR, widgetsGVR}[w%2]
			for range rounds {
				inf, err := r.Acquire(t.Context(), gvr)
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, gvr, inf.GVR())
				if got, ok := r.Lookup(gvr); assert.True(t, ok) {
					assert.Equal(t, gvr, got.GVR())
				}
				r.Release(gvr)
			}
		})
	}
	wg.Wait()
	assert.Empty(t, r.snapshot(), "every reference was released")
}

func TestAcquireErrors(t *testing.T) {
	r, _ := newTestRegistry(t)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		gvr     schema.GroupVersionResource
		wantErr string
		check   func(error) bool
	}{
		{name: "canceled", ctx: canceled, gvr: configMapsGVR, wantErr: "acquire informer for configmaps.v1: context canceled"},
		{name: "no version", ctx: t.Context(), gvr: schema.GroupVersionResource{Resource: "configmaps"}, wantErr: "must name a version and a resource"},
		{name: "unknown resource", ctx: t.Context(), gvr: schema.GroupVersionResource{Group: "nope.io", Version: "v1", Resource: "things"}, wantErr: "things.v1.nope.io", check: meta.IsNoMatchError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Acquire(tt.ctx, tt.gvr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			if tt.check != nil {
				assert.True(t, tt.check(err), "unexpected error kind: %v", err)
			}
		})
	}
	assert.Empty(t, r.snapshot())
}

func TestAcquireFindsResourcesInstalledLater(t *testing.T) {
	r, mapper := newTestRegistry(t)
	inf := acquireSynced(t, r, gadgetsGVR)
	defer r.Release(gadgetsGVR)
	assert.Equal(t, 1, mapper.resets, "a miss resets the mapper once")
	assert.Equal(t, gadgetGVK, inf.GVK())
	assert.False(t, inf.Typed())
}

func TestStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, _ := newTestRegistry(t)
	cms := acquireSynced(t, r, configMapsGVR)
	widgets := acquireSynced(t, r, widgetsGVR)

	r.Stop()
	r.Stop() // idempotent
	assert.True(t, cms.shared.IsStopped())
	assert.True(t, widgets.shared.IsStopped())
	_, ok := r.Lookup(configMapsGVR)
	assert.False(t, ok)
	_, err := r.Acquire(t.Context(), configMapsGVR)
	assert.ErrorIs(t, err, ErrStopped)
	r.Release(configMapsGVR) // after Stop: logged, harmless
}

func TestReleaseOfUnheldResourceIsLogged(t *testing.T) {
	opts, _ := testOptions(t)
	var logs []string
	var mu sync.Mutex
	opts.Logger = funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, args)
	}, funcr.Options{})
	r, err := NewRegistry(opts)
	require.NoError(t, err)
	defer r.Stop()
	inf := acquireSynced(t, r, configMapsGVR)

	r.Release(widgetsGVR)
	got, ok := r.Lookup(configMapsGVR)
	assert.True(t, ok, "other informers are untouched")
	assert.Same(t, inf, got)
	mu.Lock()
	defer mu.Unlock()
	assert.True(t, slices.ContainsFunc(logs, func(line string) bool {
		return strings.Contains(line, `"msg"="release of an informer that is not held"`) &&
			strings.Contains(line, `"resource"="widgets.v1.example.com"`)
	}), "logs: %v", logs)
}

func TestWaitForSyncOfUnlistableResource(t *testing.T) {
	r, _ := newTestRegistry(t)
	// The fake dynamic client cannot list "unserved": the informer never syncs.
	inf, err := r.Acquire(t.Context(), unservedGVR)
	require.NoError(t, err)
	assert.False(t, inf.HasSynced())

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	err = inf.WaitForSync(canceled)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "wait for unserved.v1.example.com cache sync")

	waiting := make(chan error)
	go func() { waiting <- inf.WaitForSync(t.Context()) }()
	r.Release(unservedGVR)
	assert.ErrorIs(t, <-waiting, ErrStopped, "stopping the informer ends the wait")
}

// recorder is an event handler that records what it sees.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (h *recorder) record(event string, obj any) {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, event+" "+m.GetNamespace()+"/"+m.GetName())
}

func (h *recorder) OnAdd(obj any, initial bool) {
	event := "add"
	if initial {
		event = "initial-add"
	}
	h.record(event, obj)
}
func (h *recorder) OnUpdate(_, obj any) { h.record("update", obj) }
func (h *recorder) OnDelete(obj any)    { h.record("delete", obj) }

func (h *recorder) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

func TestEventHandlers(t *testing.T) {
	r, _ := newTestRegistry(t)
	inf := acquireSynced(t, r, widgetsGVR)
	defer r.Release(widgetsGVR)

	h := &recorder{}
	reg, err := inf.AddEventHandler(h)
	require.NoError(t, err)
	require.Eventually(t, reg.HasSynced, waitFor, tick)
	assert.ElementsMatch(t, []string{"initial-add a/w1", "initial-add b/w2"}, h.seen())

	require.NoError(t, inf.RemoveEventHandler(reg))
	assert.ErrorContains(t, inf.RemoveEventHandler(badRegistration{}), "remove event handler from widgets.v1.example.com")
}

// badRegistration is a registration the informer never handed out.
type badRegistration struct{}

func (badRegistration) HasSynced() bool                     { return true }
func (badRegistration) HasSyncedChecker() cache.DoneChecker { return nil }

func TestCollector(t *testing.T) {
	r, _ := newTestRegistry(t)
	acquireSynced(t, r, configMapsGVR)
	acquireSynced(t, r, configMapsGVR)
	_, err := r.Acquire(t.Context(), unservedGVR)
	require.NoError(t, err)

	want := `
# HELP wre_informer_references Number of references (controllers) holding the shared informer of a resource.
# TYPE wre_informer_references gauge
wre_informer_references{group="",resource="configmaps",version="v1"} 2
wre_informer_references{group="example.com",resource="unserved",version="v1"} 1
# HELP wre_informer_synced Whether the shared informer of a resource has stored its initial list (1) or not yet (0).
# TYPE wre_informer_synced gauge
wre_informer_synced{group="",resource="configmaps",version="v1"} 1
wre_informer_synced{group="example.com",resource="unserved",version="v1"} 0
`
	assert.NoError(t, testutil.CollectAndCompare(r.Collector(), strings.NewReader(want)))

	r.Release(unservedGVR)
	assert.Equal(t, 2, testutil.CollectAndCount(r.Collector()), "a released resource's series disappear")
	problems, err := testutil.CollectAndLint(r.Collector())
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestResourceName(t *testing.T) {
	assert.Equal(t, "configmaps.v1", resourceName(configMapsGVR))
	assert.Equal(t, "widgets.v1.example.com", resourceName(widgetsGVR))
}
