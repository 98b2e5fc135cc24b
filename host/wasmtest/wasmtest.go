package wasmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"

	"github.com/wre-dev/wre/engine/reconcile"
	"github.com/wre-dev/wre/host"
)

// Options describe the fixture a module runs against.
type Options struct {
	// Module configures the module; Client, Cache and Recorder are set by the
	// harness. Name defaults to "test", Primary to core/v1 configmaps (kind
	// ConfigMap), and Permissions to every verb on every resource (which still
	// excludes Secrets).
	Module host.ModuleOptions
	// Runtime configures the runtime; Metrics is set by the harness. CacheDir
	// defaults to DefaultCacheDir(), so a module compiles once per machine.
	Runtime host.RuntimeOptions
	// Objects are the fixture objects, typed or *unstructured.Unstructured.
	Objects []runtime.Object
	// ListKinds maps custom resources to their list kinds (e.g. widgets →
	// "WidgetList") when no fixture object of that kind exists yet.
	ListKinds map[schema.GroupVersionResource]string
	// Cached lists the resources served by the in-memory cache; other reads
	// go to the fake client. Defaults to none.
	Cached []schema.GroupVersionResource
}

// Harness is a module running against fixtures.
type Harness struct {
	Runtime  *host.Runtime
	Compiled *host.CompiledModule
	Module   *host.Module
	// Client holds the fixture objects and receives the module's writes.
	Client *dynamicfake.FakeDynamicClient
	// Recorder receives the events the module and the host record.
	Recorder *record.FakeRecorder
	// Registry holds the host metrics.
	Registry *prometheus.Registry
	Metrics  *host.Metrics
}

// New compiles wasm and starts it as a module against opts' fixtures.
func New(t testing.TB, wasm []byte, opts Options) *Harness {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	h := &Harness{Registry: prometheus.NewRegistry(), Recorder: record.NewFakeRecorder(1000)}
	var err error
	if h.Metrics, err = host.NewMetrics(h.Registry); err != nil {
		t.Fatal(err)
	}
	objs := toUnstructured(t, opts.Objects)
	h.Client = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(unstructuredScheme(objs), opts.ListKinds, objs...)

	mo := opts.Module
	if mo.Name == "" {
		mo.Name = "test"
	}
	if mo.Primary.Resource == "" {
		mo.Primary, mo.PrimaryKind = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ConfigMap"
	}
	if mo.Permissions == nil {
		mo.Permissions = host.Permissions{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}
	}
	mo.Client, mo.Recorder = h.Client, h.Recorder
	if len(opts.Cached) > 0 {
		mo.Cache = &Cache{Client: h.Client, Resources: opts.Cached}
	}
	ro := opts.Runtime
	ro.Metrics = h.Metrics
	if ro.CacheDir == "" {
		ro.CacheDir = DefaultCacheDir()
	}
	if h.Runtime, err = host.NewRuntime(ctx, ro); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Runtime.Close(ctx) })
	if h.Compiled, err = h.Runtime.Compile(ctx, mo.Name, wasm); err != nil {
		t.Fatal(err)
	}
	if h.Module, err = h.Runtime.NewModule(ctx, h.Compiled, mo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Module.Close(ctx) })
	return h
}

// unstructuredScheme registers every built-in kind and the kinds of objs (and
// their lists) as unstructured, which is what the fake dynamic client needs to
// list them.
func unstructuredScheme(objs []runtime.Object) *runtime.Scheme {
	s := runtime.NewScheme()
	add := func(gvk schema.GroupVersionKind) {
		if !s.Recognizes(gvk) {
			s.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
		}
		if list := gvk.GroupVersion().WithKind(gvk.Kind + "List"); !s.Recognizes(list) {
			s.AddKnownTypeWithName(list, &unstructured.UnstructuredList{})
		}
	}
	for gvk := range clientscheme.Scheme.AllKnownTypes() {
		if !strings.HasSuffix(gvk.Kind, "List") {
			add(gvk)
		}
	}
	for _, obj := range objs {
		add(obj.GetObjectKind().GroupVersionKind())
	}
	return s
}

// toUnstructured converts typed objects to unstructured with their GVK set,
// which is what the fake dynamic client stores.
func toUnstructured(t testing.TB, objs []runtime.Object) []runtime.Object {
	out := make([]runtime.Object, 0, len(objs))
	for _, obj := range objs {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			out = append(out, u.DeepCopy())
			continue
		}
		gvks, _, err := clientscheme.Scheme.ObjectKinds(obj)
		if err != nil {
			t.Fatalf("fixture %T: %v", obj, err)
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetGroupVersionKind(gvks[0])
		out = append(out, u)
	}
	return out
}

// Reconcile reconciles the object namespace/name once.
func (h *Harness) Reconcile(ctx context.Context, namespace, name string) (reconcile.Result, error) {
	return h.Module.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}})
}

// Get reads an object from the fake cluster.
func (h *Harness) Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	return h.Client.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
}

// Events drains and returns the events recorded so far, each as
// "<type> <reason> <message>".
func (h *Harness) Events() []string {
	var out []string
	for {
		select {
		case e := <-h.Recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// Cache serves Resources from Client as an informer cache would: built-in
// kinds as typed objects.
type Cache struct {
	Client    dynamic.Interface
	Resources []schema.GroupVersionResource
}

// Reader implements host.Cache.
func (c *Cache) Reader(gvr schema.GroupVersionResource) (host.CacheReader, bool) {
	for _, r := range c.Resources {
		if r == gvr {
			return cacheReader{c.Client.Resource(gvr)}, true
		}
	}
	return nil, false
}

type cacheReader struct {
	ri dynamic.NamespaceableResourceInterface
}

func (r cacheReader) Get(namespace, name string) (runtime.Object, error) {
	u, err := r.ri.Namespace(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return typed(u)
}

func (r cacheReader) List(namespace string, opts metav1.ListOptions) ([]runtime.Object, string, error) {
	ul, err := r.ri.Namespace(namespace).List(context.Background(), opts)
	if err != nil {
		return nil, "", err
	}
	out := make([]runtime.Object, 0, len(ul.Items))
	for i := range ul.Items {
		obj, err := typed(&ul.Items[i])
		if err != nil {
			return nil, "", err
		}
		out = append(out, obj)
	}
	return out, ul.GetContinue(), nil
}

// typed converts u to its k8s.io/api type when it is a built-in kind.
func typed(u *unstructured.Unstructured) (runtime.Object, error) {
	obj, err := clientscheme.Scheme.New(u.GroupVersionKind())
	if err != nil {
		return u, nil //nolint:nilerr // not a built-in kind: stays unstructured
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// DefaultCacheDir is the compilation cache shared by harnesses:
// $TMPDIR/wre-wasmtest-cache. wazero keys entries by module digest and wazero
// version, so sharing it across runs is safe.
func DefaultCacheDir() string { return filepath.Join(os.TempDir(), "wre-wasmtest-cache") }

var builds sync.Map // package directory → *build

type build struct {
	once sync.Once
	wasm []byte
	err  error
}

// Build compiles the guest package in dir (a path relative to the test's
// working directory, or absolute) with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared, once per test binary run, and returns the module bytes.
func Build(t testing.TB, dir string) []byte {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := builds.LoadOrStore(abs, &build{})
	b := v.(*build)
	b.once.Do(func() { b.wasm, b.err = goBuild(abs) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.wasm
}

func goBuild(dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "wasmtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "module.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build guest %s: %w\n%s", dir, err, strings.TrimSpace(string(msg)))
	}
	return os.ReadFile(out)
}
