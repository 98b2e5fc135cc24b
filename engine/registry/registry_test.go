package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
	"github.com/wre-dev/wre/test/controlplane"
)

// manifestYAML is a module of the script test guest over ConfigMaps; its
// config makes every reconcile succeed at once.
const manifestYAML = `apiVersion: wre.dev/v1alpha1
kind: Module
name: demo
abi: v1
for: {version: v1, resource: configmaps, kind: ConfigMap}
permissions:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list, watch]
concurrency: 2
reconcileTimeout: 5s
memoryLimit: 64Mi
config: {steps: []}
`

func manifest(t testing.TB, edits ...func(*modules.Manifest)) *modules.Manifest {
	t.Helper()
	m, err := modules.ParseManifest([]byte(manifestYAML))
	require.NoError(t, err)
	for _, e := range edits {
		e(m)
	}
	return m
}

// guest returns the script test guest; a non-empty tag appends a custom
// section, which changes the digest and nothing else.
func guest(t testing.TB, tag string) []byte {
	t.Helper()
	wasm := wasmtest.Build(t, "../../host/testdata/guests/script")
	if tag == "" {
		return wasm
	}
	return append(append([]byte{}, wasm...), customSection(tag)...)
}

func customSection(payload string) []byte {
	body := append([]byte{1, 'v'}, payload...)
	return append([]byte{0, byte(len(body))}, body...)
}

// rawWasm is a hand-written module that exports only an ABI marker and a
// memory: it compiles, but misses every other export.
func rawWasm(marker string) []byte {
	b := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0, // type section: () -> ()
		3, 2, 1, 0, // function section
		5, 3, 1, 0, 1, // memory section: min 1 page
	}
	exports := []byte{2, byte(len(marker))}
	exports = append(exports, marker...)
	exports = append(exports, 0, 0, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0)
	b = append(b, 7, byte(len(exports)))
	b = append(b, exports...)
	return append(b, 10, 4, 1, 2, 0, 0x0b) // code section: one empty body
}

// controllers records the controllers the registry adds and removes.
type controllers struct {
	mu      sync.Mutex
	specs   map[string]manager.ControllerSpec
	adds    int
	removes int
	failAdd int // fail that many AddController calls
	requeue map[string]int
}

func (c *controllers) RequeueAll(name string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.specs[name]; !ok {
		return 0, fmt.Errorf("requeue controller %q: no such controller", name)
	}
	if c.requeue == nil {
		c.requeue = map[string]int{}
	}
	c.requeue[name]++
	return 0, nil
}

func (c *controllers) requeues(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requeue[name]
}

func (c *controllers) AddController(_ context.Context, spec manager.ControllerSpec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAdd > 0 {
		c.failAdd--
		return fmt.Errorf("add controller %q: injected failure", spec.Name)
	}
	if _, ok := c.specs[spec.Name]; ok {
		return fmt.Errorf("add controller %q: exists", spec.Name)
	}
	c.specs[spec.Name] = spec
	c.adds++
	return nil
}

func (c *controllers) RemoveController(_ context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.specs[name]; !ok {
		return fmt.Errorf("remove controller %q: no such controller", name)
	}
	delete(c.specs, name)
	c.removes++
	return nil
}

func (c *controllers) spec(name string) (manager.ControllerSpec, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.specs[name]
	return s, ok
}

func (c *controllers) counts() (adds, removes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adds, c.removes
}

type fixture struct {
	t        *testing.T
	ns       string
	client   kubernetes.Interface
	ctrls    *controllers
	recorder *record.FakeRecorder
	prom     *prometheus.Registry
	reg      *registry.Registry
}

func start(t *testing.T, edit func(*registry.Options)) *fixture {
	t.Helper()
	ctx := t.Context()
	// The ConfigMaps live in the real API server, each test in a namespace
	// of its own; the controllers are recorded, not run.
	f := &fixture{t: t, ns: controlplane.Namespace(t, cp), client: kubernetes.NewForConfigOrDie(cp.Config()), ctrls: &controllers{specs: map[string]manager.ControllerSpec{}},
		recorder: record.NewFakeRecorder(100), prom: prometheus.NewRegistry()}
	rt, err := host.NewRuntime(context.WithoutCancel(ctx), host.RuntimeOptions{CacheDir: wasmtest.DefaultCacheDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	metrics, err := registry.NewMetrics(f.prom)
	require.NoError(t, err)
	opts := registry.Options{
		Namespace: f.ns, Client: f.client, DynamicClient: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		Controllers: f.ctrls, Runtime: rt, Metrics: metrics, Recorder: f.recorder, SettleDelay: 10 * time.Millisecond, IncompleteTimeout: 5 * time.Second, // parts of one apply arrive well within it, even on a loaded machine
	}
	if edit != nil {
		edit(&opts)
	}
	f.reg, err = registry.New(opts)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.reg.Start(runCtx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return f
}

// apply makes cms the module's ConfigMaps, as `wre package --apply` does:
// part 0 last, then the ConfigMaps of the module not in cms deleted.
func (f *fixture) apply(cms ...*corev1.ConfigMap) {
	f.t.Helper()
	keep := map[string]bool{}
	for i := len(cms) - 1; i >= 0; i-- {
		cm := cms[i].DeepCopy()
		cm.Namespace = f.ns
		keep[cm.Name] = true
		_, err := f.client.CoreV1().ConfigMaps(f.ns).Update(f.t.Context(), cm, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			_, err = f.client.CoreV1().ConfigMaps(f.ns).Create(f.t.Context(), cm, metav1.CreateOptions{})
		}
		require.NoError(f.t, err)
	}
	list, err := f.client.CoreV1().ConfigMaps(f.ns).List(f.t.Context(), metav1.ListOptions{LabelSelector: modules.LabelModule})
	require.NoError(f.t, err)
	for _, cm := range list.Items {
		if !keep[cm.Name] {
			require.NoError(f.t, f.client.CoreV1().ConfigMaps(f.ns).Delete(f.t.Context(), cm.Name, metav1.DeleteOptions{}))
		}
	}
}

// deleteAll deletes every module ConfigMap.
func (f *fixture) deleteAll() {
	f.t.Helper()
	f.apply()
}

func pkg(t testing.TB, m *modules.Manifest, wasm []byte, partSize int) []*corev1.ConfigMap {
	t.Helper()
	cms, err := modules.Package(m, wasm, modules.PackageOptions{PartSize: partSize, Level: zstd.SpeedFastest})
	require.NoError(t, err)
	return cms
}

// event waits for the next event and returns it as "<type> <reason> <message>".
func (f *fixture) event() string {
	f.t.Helper()
	select {
	case e := <-f.recorder.Events:
		return e
	case <-time.After(60 * time.Second):
		f.t.Fatal("no event within 60s")
		return ""
	}
}

func (f *fixture) status(name string) (registry.Status, bool) {
	for _, s := range f.reg.Statuses() {
		if s.Name == name {
			return s, true
		}
	}
	return registry.Status{}, false
}

// load applies a good module and waits for it to run.
func (f *fixture) load(wasm []byte) {
	f.t.Helper()
	f.apply(pkg(f.t, manifest(f.t), wasm, 0)...)
	require.Contains(f.t, f.event(), "Normal Loaded module demo "+modules.Digest(wasm))
}

func reconcileOnce(t *testing.T, spec manager.ControllerSpec) {
	t.Helper()
	_, err := spec.Reconciler.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "x", Name: "y"}})
	require.NoError(t, err)
}

func TestLoadSwapUnload(t *testing.T) {
	f := start(t, nil)
	v1, v2 := guest(t, ""), guest(t, "2")
	f.load(v1)

	spec, ok := f.ctrls.spec("demo")
	require.True(t, ok)
	assert.Equal(t, "/v1, Resource=configmaps", spec.For.String())
	assert.Equal(t, 2, spec.MaxConcurrentReconciles)
	assert.Equal(t, 5*time.Second+host.DefaultInitTimeout, spec.ReconcileTimeout)
	reconcileOnce(t, spec)
	st, ok := f.status("demo")
	require.True(t, ok)
	assert.Equal(t, registry.Status{Name: "demo", Digest: modules.Digest(v1), ABI: "v1", State: registry.StateLoaded,
		LoadedAt: st.LoadedAt, Instances: 1, Reconciles: 1}, st)
	assert.Equal(t, []string{"demo " + modules.Digest(v1) + " v1"}, info(t, f))

	// Same watches: the new version is swapped into the running controller.
	f.apply(pkg(t, manifest(t), v2, 0)...)
	assert.Contains(t, f.event(), "Normal Loaded module demo "+modules.Digest(v2)+" (abi v1, ")
	adds, removes := f.ctrls.counts()
	assert.Equal(t, [2]int{1, 0}, [2]int{adds, removes}, "swapped in place")
	assert.Equal(t, 1, f.ctrls.requeues("demo"), "every object is requeued for the new version")
	swapped, _ := f.ctrls.spec("demo")
	assert.Same(t, spec.Reconciler, swapped.Reconciler)
	reconcileOnce(t, swapped)
	st, _ = f.status("demo")
	assert.Equal(t, modules.Digest(v2), st.Digest)
	assert.Equal(t, int64(2), st.Reconciles)
	assert.Equal(t, 2, testutil.CollectAndCount(f.prom, "wre_module_loads_total"), "success and error series")
	assert.Equal(t, []string{"demo " + modules.Digest(v2) + " v1"}, info(t, f), "only the running version")

	// Changed watches: the controller is replaced.
	withOwns := manifest(t, func(m *modules.Manifest) {
		m.Owns = []modules.Resource{{Version: "v1", Resource: "configmaps", Kind: "ConfigMap"}}
		m.Watches = []modules.Watch{{Resource: modules.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap"}, MapTo: modules.MapToSameName}, {Resource: modules.Resource{Version: "v1", Resource: "configmaps", Kind: "ConfigMap"}}}
		m.Predicates = []string{modules.PredicateGenerationChanged}
	})
	f.apply(pkg(t, withOwns, v2, 0)...)
	assert.Contains(t, f.event(), "Normal Loaded module demo")
	adds, removes = f.ctrls.counts()
	assert.Equal(t, [2]int{2, 1}, [2]int{adds, removes}, "replaced")
	spec, _ = f.ctrls.spec("demo")
	assert.Len(t, spec.Owns, 1)
	assert.Len(t, spec.Watches, 2)
	assert.Len(t, spec.Predicates, 1)
	reconcileOnce(t, spec)
	st, _ = f.status("demo")
	assert.Equal(t, int64(3), st.Reconciles, "counts survive a replaced controller")

	// Reapplying the same set changes nothing.
	f.apply(pkg(t, withOwns, v2, 0)...)
	time.Sleep(100 * time.Millisecond)
	assert.Empty(t, f.recorder.Events)

	f.deleteAll()
	require.Eventually(t, func() bool { _, ok := f.status("demo"); return !ok }, 30*time.Second, 10*time.Millisecond)
	_, ok = f.ctrls.spec("demo")
	assert.False(t, ok, "controller removed")
	assert.Equal(t, 0, testutil.CollectAndCount(f.prom, "wre_module_info"))
	assert.Equal(t, 0, testutil.CollectAndCount(f.prom, "wre_module_loads_total"))
}

// info returns the wre_module_info series as "module digest abi".
func info(t *testing.T, f *fixture) []string {
	t.Helper()
	mfs, err := f.prom.Gather()
	require.NoError(t, err)
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "wre_module_info" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			require.Equal(t, 1.0, m.GetGauge().GetValue())
			out = append(out, l["module"]+" "+l["digest"]+" "+l["abi"])
		}
	}
	return out
}

// TestBadVersionsKeepTheRunningOne applies each kind of bad input over a
// running module: each gives a LoadFailed event naming the problem, and the
// running version keeps serving.
func TestBadVersionsKeepTheRunningOne(t *testing.T) {
	good := guest(t, "")
	big := guest(t, "big") // split in parts of 64 KiB
	cases := []struct {
		name   string
		policy *modules.Policy
		cms    func(t *testing.T) []*corev1.ConfigMap
		want   string
	}{
		{"invalid wasm", nil, func(t *testing.T) []*corev1.ConfigMap {
			return pkg(t, manifest(t), []byte("\x00asm\x01\x00\x00\x00garbage"), 0)
		}, "CompileFailed: compile module \"demo\""},
		{"digest mismatch", nil, func(t *testing.T) []*corev1.ConfigMap {
			cms := pkg(t, manifest(t), guest(t, "x"), 0)
			wrong := modules.Digest([]byte("another module"))
			for _, cm := range cms {
				cm.Annotations[modules.AnnotationDigest] = wrong
			}
			cms[0].Data[modules.KeyManifest] = strings.Replace(cms[0].Data[modules.KeyManifest], modules.Digest(guest(t, "x")), wrong, 1)
			return cms
		}, "InvalidPackage: assemble module \"demo\": digest mismatch"},
		{"missing part", nil, func(t *testing.T) []*corev1.ConfigMap {
			cms := pkg(t, manifest(t), big, 64<<10)
			require.Greater(t, len(cms), 2)
			return append(cms[:1], cms[2:]...)
		}, "InvalidPackage: assemble module \"demo\": missing part 1 of"},
		{"mixed parts", nil, func(t *testing.T) []*corev1.ConfigMap {
			a, b := pkg(t, manifest(t), big, 64<<10), pkg(t, manifest(t), guest(t, "other"), 64<<10)
			return append([]*corev1.ConfigMap{a[0], b[1]}, a[2:]...)
		}, "two versions mixed"},
		{"invalid manifest", nil, func(t *testing.T) []*corev1.ConfigMap {
			cms := pkg(t, manifest(t), guest(t, "y"), 0)
			cms[0].Data[modules.KeyManifest] = strings.Replace(cms[0].Data[modules.KeyManifest], "kind: ConfigMap", "kind: \"\"", 1)
			return cms
		}, "for.kind: Required value"},
		{"unsupported ABI", nil, func(t *testing.T) []*corev1.ConfigMap {
			return pkg(t, manifest(t), rawWasm("wre_abi_v9"), 0)
		}, "CompileFailed: compile module \"demo\": unsupported ABI: module exports [wre_abi_v9]"},
		{"ABI mismatch", nil, func(t *testing.T) []*corev1.ConfigMap {
			return pkg(t, manifest(t, func(m *modules.Manifest) { m.ABI = "v2" }), guest(t, "z"), 0)
		}, "ABIMismatch: manifest says abi v2 (wre_abi_v2), the wasm exports wre_abi_v1"},
		{"permissions beyond policy", &modules.Policy{Permissions: host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}}},
			func(t *testing.T) []*corev1.ConfigMap {
				return pkg(t, manifest(t, func(m *modules.Manifest) { m.Permissions[0].Verbs = append(m.Permissions[0].Verbs, "delete") }), guest(t, "p"), 0)
			}, "PolicyViolation: module \"demo\" exceeds the engine policy: permissions[0]: delete configmaps (group core) in every namespace is not allowed"},
		{"zip bomb", nil, func(t *testing.T) []*corev1.ConfigMap {
			cms := pkg(t, manifest(t), make([]byte, 32<<20), 0)
			cms[0].Annotations[modules.AnnotationSize] = "1000"
			return cms
		}, "compression bomb?"},
		{"missing exports", nil, func(t *testing.T) []*corev1.ConfigMap {
			return pkg(t, manifest(t), rawWasm("wre_abi_v1"), 0)
		}, "missing export wre_reconcile"},
		{"memory limit below the initial memory", nil, func(t *testing.T) []*corev1.ConfigMap {
			return pkg(t, manifest(t, func(m *modules.Manifest) { q := m.MemoryLimit.DeepCopy(); q.Set(64 << 10); m.MemoryLimit = &q }), guest(t, "m"), 0)
		}, "InstantiateFailed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log logLines
			f := start(t, func(o *registry.Options) {
				o.Logger = funcr.NewJSON(log.add, funcr.Options{})
				if c.policy != nil {
					o.Policy = c.policy
				}
			})
			if c.policy == nil {
				f.load(good)
			} else {
				f.load(good) // the good manifest is within the policy
			}
			cms := c.cms(t)
			f.apply(cms...)
			ev := f.event()
			assert.True(t, strings.HasPrefix(ev, "Warning LoadFailed "), ev)
			assert.Contains(t, ev, c.want)
			assert.Contains(t, ev, "; still running "+modules.Digest(good))
			// The event and the log line are written one after the other,
			// not atomically: wait for the line rather than race it.
			var failed map[string]any
			require.Eventually(t, func() bool {
				failed = log.find("Module load failed")
				return failed != nil
			}, 30*time.Second, 50*time.Millisecond, "the failure is logged")
			assert.NotContains(t, failed, "level", "logged at error level, not info: %v", failed)
			reason, _ := failed["reason"].(string)
			errText, _ := failed["error"].(string)
			assert.NotEmpty(t, errText)
			assert.Contains(t, ev, "Warning LoadFailed "+reason+": "+errText, "the reason and error of the Event")
			assert.Equal(t, "demo", failed["module"])
			assert.Equal(t, cms[0].Annotations[modules.AnnotationDigest], failed["version"], "the version that failed")
			assert.Equal(t, modules.Digest(good), failed["running"])

			st, _ := f.status("demo")
			assert.Equal(t, registry.StateLoadFailed, st.State)
			assert.Equal(t, modules.Digest(good), st.Digest)
			assert.Contains(t, st.LastError, c.want)
			spec, ok := f.ctrls.spec("demo")
			require.True(t, ok)
			reconcileOnce(t, spec)
			assert.Equal(t, []string{"demo " + modules.Digest(good) + " v1"}, info(t, f))
		})
	}
}

// logLines records the JSON lines of a funcr logger.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) add(line string) {
	var m map[string]any
	if json.Unmarshal([]byte(line), &m) == nil {
		l.mu.Lock()
		l.lines = append(l.lines, m)
		l.mu.Unlock()
	}
}

// find returns the first line with message msg, or nil.
func (l *logLines) find(msg string) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.lines {
		if m["msg"] == msg {
			return m
		}
	}
	return nil
}

func TestFirstLoadFailureAndRetry(t *testing.T) {
	f := start(t, nil)
	f.ctrls.failAdd = 1
	wasm := guest(t, "")
	f.apply(pkg(t, manifest(t), wasm, 0)...)
	ev := f.event()
	assert.Contains(t, ev, "Warning LoadFailed StartFailed: add controller \"demo\": injected failure")
	assert.NotContains(t, ev, "still running")
	// Transient failures are retried.
	assert.Contains(t, f.event(), "Normal Loaded module demo")
	st, _ := f.status("demo")
	assert.Equal(t, registry.StateLoaded, st.State)
	assert.Empty(t, st.LastError)
}

func TestServiceAccountNeedsConfig(t *testing.T) {
	f := start(t, nil)
	f.apply(pkg(t, manifest(t, func(m *modules.Manifest) { m.ServiceAccountName = "wre-module-demo" }), guest(t, ""), 0)...)
	assert.Contains(t, f.event(), `InstantiateFailed: serviceAccountName "wre-module-demo": the engine has no client configuration`)
	st, _ := f.status("demo")
	assert.Equal(t, registry.Status{Name: "demo", State: registry.StateLoadFailed, LastError: st.LastError}, st)
}

func TestHandler(t *testing.T) {
	f := start(t, nil)
	f.load(guest(t, ""))
	srv := httptest.NewServer(f.reg.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var got []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Len(t, got, 1)
	assert.Equal(t, "demo", got[0]["name"])
	assert.Equal(t, registry.StateLoaded, got[0]["state"])
	assert.Equal(t, modules.Digest(guest(t, "")), got[0]["digest"])
	for _, k := range []string{"instances", "reconciles", "reconcileErrors", "loadedAt", "abi"} {
		assert.Contains(t, got[0], k)
	}

	post, err := http.Post(srv.URL, "text/plain", nil)
	require.NoError(t, err)
	post.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, post.StatusCode)

	statuses, err := registry.FetchStatuses(t.Context(), nil, srv.URL)
	require.NoError(t, err)
	want := f.reg.Statuses()
	require.Len(t, statuses, 1)
	require.NotNil(t, statuses[0].LoadedAt)
	assert.True(t, want[0].LoadedAt.Equal(*statuses[0].LoadedAt))
	statuses[0].LoadedAt = want[0].LoadedAt
	assert.Equal(t, want, statuses, "the client reads what the handler serves")
	_, err = registry.FetchStatuses(t.Context(), nil, "http://[::1")
	assert.Error(t, err, "a malformed URL")
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	_, err = registry.FetchStatuses(t.Context(), nil, notFound.URL)
	assert.ErrorContains(t, err, "GET "+notFound.URL+": 404 Not Found")
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }))
	defer notJSON.Close()
	_, err = registry.FetchStatuses(t.Context(), nil, notJSON.URL)
	assert.ErrorContains(t, err, "GET "+notJSON.URL+": ")
}

func TestNewValidatesOptions(t *testing.T) {
	rt, err := host.NewRuntime(t.Context(), host.RuntimeOptions{})
	require.NoError(t, err)
	defer rt.Close(t.Context())
	full := registry.Options{Namespace: "wre-system", Client: fake.NewSimpleClientset(), DynamicClient: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), Controllers: &controllers{}, Runtime: rt}
	for name, edit := range map[string]func(*registry.Options){
		"Namespace is required":    func(o *registry.Options) { o.Namespace = "" },
		"Client and DynamicClient": func(o *registry.Options) { o.Client = nil },
		"Controllers is required":  func(o *registry.Options) { o.Controllers = nil },
		"Runtime is required":      func(o *registry.Options) { o.Runtime = nil },
	} {
		o := full
		edit(&o)
		_, err := registry.New(o)
		assert.ErrorContains(t, err, name)
	}
	_, err = registry.New(full)
	assert.NoError(t, err)
}
