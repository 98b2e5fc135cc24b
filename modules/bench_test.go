package modules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
	"github.com/wre-dev/wre/test/benchcpu"
	"github.com/wre-dev/wre/test/benchmem"
)

// BenchmarkStatusSync compares a reconcile of an in-sync Widget (one cached
// get, no write) by the status-sync wasm module with the engine's native
// reconciler of the same logic (engine/native/statussync), both reading the
// same cache.
func BenchmarkStatusSync(b *testing.B) {
	opts := wasmtest.Options{
		ListKinds: map[schema.GroupVersionResource]string{statussync.GVR: "WidgetList"},
		Objects: []runtime.Object{object("demo.wre.dev/v1", "Widget", "demo", "w", map[string]any{
			"metadata": map[string]any{"generation": int64(1)},
			"spec":     map[string]any{"desired": "blue"},
			"status":   map[string]any{"current": "blue", "observedGeneration": int64(1)},
		})},
		// Informers serve the primary resource in the engine.
		Cached: []schema.GroupVersionResource{statussync.GVR},
	}
	h := run(b, "status-sync", opts)
	cached, ok := h.Cache.Reader(statussync.GVR)
	require.True(b, ok)
	native := statussync.New(cached, h.Client)
	compare(b, h, trusted(b, "status-sync", opts), native, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "demo", Name: "w"}})
}

// BenchmarkConfigMapReplicator compares a reconcile of an in-sync source
// ConfigMap replicated to two namespaces (get the source, get both copies,
// list the copies by label; no write) by the configmap-replicator wasm module
// with a native reconciler of the same steady-state logic, both reading the
// same cache.
func BenchmarkConfigMapReplicator(b *testing.B) {
	const (
		replicateTo = "wre.dev/replicate-to"
		ofNamespace = "wre.dev/replica-of-namespace"
		ofName      = "wre.dev/replica-of-name"
	)
	data := map[string]string{}
	for i := range 10 {
		data[fmt.Sprintf("key-%d", i)] = fmt.Sprintf("value-%d", i)
	}
	src := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "settings", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{replicateTo: "b,c"}, Finalizers: []string{"wre.dev/replicator"}},
		Data: data,
	}
	replica := func(ns string) *corev1.ConfigMap {
		return &corev1.ConfigMap{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings",
				Labels: map[string]string{"app": "web", ofNamespace: "a", ofName: "settings"}},
			Data: data,
		}
	}
	configmaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	opts := wasmtest.Options{
		Objects: []runtime.Object{src, replica("b"), replica("c")},
		Cached:  []schema.GroupVersionResource{configmaps},
	}
	h := run(b, "configmap-replicator", opts)
	cached, ok := h.Cache.Reader(configmaps)
	require.True(b, ok)
	get := func(ns, name string) (*corev1.ConfigMap, error) {
		obj, err := cached.Get(ns, name)
		if err != nil {
			return nil, err
		}
		return obj.(*corev1.ConfigMap), nil
	}
	// The module's steady state, natively: the same reads, the same checks.
	native := reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		s, err := get(req.Namespace, req.Name)
		if err != nil {
			return reconcile.Result{}, err
		}
		var targets []string
		for ns := range strings.SplitSeq(s.Annotations[replicateTo], ",") {
			if ns = strings.TrimSpace(ns); ns != "" && ns != s.Namespace {
				targets = append(targets, ns)
			}
		}
		slices.Sort(targets)
		targets = slices.Compact(targets)
		if !slices.Contains(s.Finalizers, "wre.dev/replicator") {
			return reconcile.Result{}, fmt.Errorf("benchmark fixture out of sync: no finalizer")
		}
		for _, ns := range targets {
			c, err := get(ns, s.Name)
			if err != nil {
				return reconcile.Result{}, err
			}
			labels := maps.Clone(s.Labels)
			labels[ofNamespace], labels[ofName] = s.Namespace, s.Name
			if !maps.Equal(c.Data, s.Data) || !maps.Equal(c.Labels, labels) {
				return reconcile.Result{}, fmt.Errorf("benchmark fixture out of sync: copy in %s", ns)
			}
		}
		copies, _, err := cached.List("", metav1.ListOptions{LabelSelector: ofNamespace + "=" + s.Namespace + "," + ofName + "=" + s.Name})
		if err != nil {
			return reconcile.Result{}, err
		}
		for _, c := range copies {
			if !slices.Contains(targets, c.(*corev1.ConfigMap).Namespace) {
				return reconcile.Result{}, fmt.Errorf("benchmark fixture out of sync: stray copy")
			}
		}
		return reconcile.Result{RequeueAfter: 10 * time.Minute}, nil
	})
	compare(b, h, trusted(b, "configmap-replicator", opts), native, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "a", Name: "settings"}})
}

// trusted runs the module of dir on its own copy of opts' fixtures in a
// runtime without loop checks (wre run --trusted-guests).
func trusted(b *testing.B, dir string, opts wasmtest.Options) *wasmtest.Harness {
	opts.Runtime.TrustedGuests = true
	return run(b, dir, opts)
}

// compare runs req through the wasm module of h (impl=wasm), of t (the same
// module run as a trusted guest: impl=wasm-trusted) and through native
// (impl=native); none may write.
func compare(b *testing.B, h, t *wasmtest.Harness, native reconcile.Reconciler, req reconcile.Request) {
	b.Helper()
	for _, impl := range []struct {
		name string
		r    reconcile.Reconciler
	}{{"wasm", h.Module}, {"wasm-trusted", t.Module}, {"native", native}} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			// The first wasm reconcile creates the instance: not measured.
			_, err := impl.r.Reconcile(b.Context(), req)
			require.NoError(b, err)
			b.ReportAllocs()
			report := benchcpu.Start(b)
			for b.Loop() {
				if _, err := impl.r.Reconcile(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
			report()
		})
	}
	require.Empty(b, h.Writes(), "an in-sync object needs no write")
	require.Empty(b, t.Writes(), "an in-sync object needs no write")
}

// BenchmarkHostCalls measures one reconcile of the getbench guest per
// operation: a get from the cache of a typical Deployment as protobuf (typed)
// and as JSON (unstructured), of a custom resource of similar size (JSON into
// a typed struct), a list of 100 cached ConfigMaps, and a get plus update of
// the Deployment. op=noop is a reconcile without host call: subtract it to
// get the cost of the call alone. The op=*-v2 rows do the same through ABI
// v2 and the lean SDK (getbench2), objects projected to the fields a
// typical reconciler reads; the update is a server-side apply.
func BenchmarkHostCalls(b *testing.B) {
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	configmaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gizmos := schema.GroupVersionResource{Group: "bench.wre.dev", Version: "v1", Resource: "gizmos"}
	settings := make([]any, 20)
	for i := range settings {
		settings[i] = map[string]any{"name": fmt.Sprintf("VAR_%d", i), "value": fmt.Sprintf("value-%d", i)}
	}
	objects := []runtime.Object{deployment(), object("bench.wre.dev/v1", "Gizmo", "bench", "d", map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": "d", "tier": "web"}},
		"spec":     map[string]any{"image": "registry.example/app:1.2.3", "replicas": int64(3), "settings": settings},
	})}
	for i := range 100 {
		objects = append(objects, &corev1.ConfigMap{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("cm-%03d", i),
				Labels: map[string]string{"bench": "list", "app.kubernetes.io/name": "d"}},
			Data: map[string]string{"config.yaml": "mode: production\nlevel: info\n", "index": fmt.Sprint(i)},
		})
	}
	h := getbench(b, wasmtest.Options{
		Objects: objects,
		Cached:  []schema.GroupVersionResource{deployments, configmaps, gizmos},
	})
	v2 := wasmtest.New(b, wasmtest.Build(b, "testdata/getbench2"), wasmtest.Options{
		Objects: objects,
		Cached:  []schema.GroupVersionResource{deployments, configmaps, gizmos},
		Module:  host.ModuleOptions{Name: "getbench2"},
	})
	for _, c := range []struct {
		h  *wasmtest.Harness
		op string
	}{
		{h, "noop"}, {h, "get-protobuf"}, {h, "get-json"}, {h, "get-cr"}, {h, "list-protobuf"}, {h, "list-json"}, {h, "update-protobuf"}, {h, "update-json"},
		// ABI v2 (modules/testdata/getbench2): the same objects, projected to
		// the fields a typical reconciler reads.
		{v2, "noop-v2"}, {v2, "get-v2"}, {v2, "get-cr-v2"}, {v2, "list-v2"}, {v2, "apply-v2"},
	} {
		b.Run("op="+c.op, func(b *testing.B) {
			guestOp := strings.TrimSuffix(c.op, "-v2")
			// The first reconcile creates the instance: not measured.
			_, err := c.h.Reconcile(b.Context(), guestOp, "d")
			require.NoError(b, err)
			b.ReportAllocs()
			report := benchcpu.Start(b)
			for b.Loop() {
				_, err := c.h.Reconcile(b.Context(), guestOp, "d")
				require.NoError(b, err)
			}
			report()
		})
	}
	// What the test cache itself costs per read (both ABIs pay it; the
	// engine's informer cache returns its objects without copying or
	// converting them): subtract it for the ABI's share.
	for _, c := range []struct {
		op  string
		gvr schema.GroupVersionResource
	}{{"cache-get-native", deployments}, {"cache-list-native", configmaps}} {
		b.Run("op="+c.op, func(b *testing.B) {
			r, ok := v2.Cache.Reader(c.gvr)
			require.True(b, ok)
			report := benchcpu.Start(b)
			for b.Loop() {
				if c.gvr == deployments {
					_, err := r.Get("bench", "d")
					require.NoError(b, err)
				} else {
					_, _, err := r.List("bench", metav1.ListOptions{LabelSelector: "bench=list"})
					require.NoError(b, err)
				}
			}
			report()
		})
	}
}

// getbench runs the getbench guest with the Deployment of deployment() in its
// config, encoded as protobuf and as JSON, for its decode operations.
func getbench(b *testing.B, opts wasmtest.Options) *wasmtest.Harness {
	pb, js := encodedDeployment(b)
	config, err := json.Marshal(map[string][]byte{"Protobuf": pb, "JSON": js})
	require.NoError(b, err)
	opts.Module = host.ModuleOptions{Name: "getbench", Config: config}
	h := wasmtest.New(b, wasmtest.Build(b, "testdata/getbench"), opts)
	// The first reconcile creates the instance: not measured.
	_, err = h.Reconcile(b.Context(), "noop", "d")
	require.NoError(b, err)
	return h
}

func encodedDeployment(b *testing.B) (pb, js []byte) {
	pb, err := deployment().Marshal()
	require.NoError(b, err)
	js, err = json.Marshal(deployment())
	require.NoError(b, err)
	return pb, js
}

// BenchmarkGuestCompute decodes a typical Deployment ten times from protobuf
// and from JSON: in the getbench guest (one reconcile, no host call; subtract
// BenchmarkHostCalls/op=noop for the decoding alone), with and without
// wazero's loop checks (impl=wasm, impl=wasm-trusted), and natively, the same
// code in the host process. It measures how much slower Go code runs as a
// wasm guest, apart from any host call.
func BenchmarkGuestCompute(b *testing.B) {
	checked := getbench(b, wasmtest.Options{})
	trusted := getbench(b, wasmtest.Options{Runtime: host.RuntimeOptions{TrustedGuests: true}})
	pb, js := encodedDeployment(b)
	for _, enc := range []string{"protobuf", "json"} {
		for _, impl := range []struct {
			name string
			h    *wasmtest.Harness
		}{{"wasm", checked}, {"wasm-trusted", trusted}} {
			b.Run("decode="+enc+"/impl="+impl.name, func(b *testing.B) {
				report := benchcpu.Start(b)
				for b.Loop() {
					_, err := impl.h.Reconcile(b.Context(), "decode-"+enc, "d")
					require.NoError(b, err)
				}
				report()
			})
		}
		b.Run("decode="+enc+"/impl=native", func(b *testing.B) {
			report := benchcpu.Start(b)
			for b.Loop() {
				// modules/testdata/getbench's DecodeDeployment10.
				for range 10 {
					var d appsv1.Deployment
					var err error
					if enc == "json" {
						err = json.Unmarshal(js, &d)
					} else {
						err = d.Unmarshal(pb)
					}
					if err != nil || d.Name == "" {
						b.Fatal("decode", err)
					}
				}
			}
			report()
		})
	}
}

// deployment is a Deployment of typical size: labels, annotations, two
// containers with environment, ports, probes and resources.
func deployment() *appsv1.Deployment {
	env := make([]corev1.EnvVar, 20)
	for i := range env {
		env[i] = corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", i), Value: fmt.Sprintf("value-%d", i)}
	}
	container := func(name string) corev1.Container {
		return corev1.Container{
			Name: name, Image: "registry.example/" + name + ":1.2.3", Env: env,
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready"}}},
		}
	}
	labels := map[string]string{"app.kubernetes.io/name": "d", "app.kubernetes.io/part-of": "bench", "tier": "web"}
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "d", Labels: labels,
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "3", "owner": "team-a"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{container("app"), container("sidecar")}},
			},
		},
		Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, UpdatedReplicas: 3},
	}
}

// BenchmarkLifecycle measures what loading the status-sync module costs
// (13.9 MB of wasm): compiling it in a new runtime with an empty compilation
// cache (cache=cold) and with a warm one (cache=warm), and starting one
// instance (instantiate: create it, run _initialize and a first reconcile,
// close it), reporting the instance's linear memory; module reports what a
// loaded module holds before any instance (compiled code and host state).
func BenchmarkLifecycle(b *testing.B) {
	raw, err := os.ReadFile("status-sync/module.yaml")
	require.NoError(b, err)
	m, err := modules.ParseManifest(raw)
	require.NoError(b, err)
	wasm := wasmtest.Build(b, "status-sync")
	compile := func(b *testing.B, dir string) {
		ctx := context.Background()
		rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: dir})
		require.NoError(b, err)
		defer rt.Close(ctx)
		_, err = rt.Compile(ctx, m.Name, wasm)
		require.NoError(b, err)
	}
	b.Run("compile=cold", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			compile(b, filepath.Join(b.TempDir(), strconv.Itoa(i)))
		}
	})
	b.Run("compile=warm", func(b *testing.B) {
		dir := b.TempDir()
		compile(b, dir)
		for b.Loop() {
			compile(b, dir)
		}
	})
	b.Run("module", func(b *testing.B) {
		// What a loaded module holds before any instance: its compiled code
		// (loaded from a warm cache) and the host's state of the Module.
		dir := b.TempDir()
		compile(b, dir)
		ctx := context.Background()
		var heap, rss float64
		for b.Loop() {
			rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: dir})
			require.NoError(b, err)
			heap0, rss0 := benchmem.Footprint()
			compiled, err := rt.Compile(ctx, m.Name, wasm)
			require.NoError(b, err)
			opts := m.ModuleOptions()
			opts.Client = dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
			mod, err := rt.NewModule(ctx, compiled, opts)
			require.NoError(b, err)
			heap1, rss1 := benchmem.Footprint()
			heap, rss = float64(heap1-heap0), float64(rss1-rss0)
			require.NoError(b, mod.Close(ctx))
			require.NoError(b, rt.Close(ctx))
		}
		b.ReportMetric(heap/(1<<20), "heap-MiB/module")
		b.ReportMetric(rss/(1<<20), "rss-MiB/module")
	})
	b.Run("instantiate", func(b *testing.B) {
		h := run(b, "status-sync", wasmtest.Options{ListKinds: map[schema.GroupVersionResource]string{statussync.GVR: "WidgetList"}})
		opts := m.ModuleOptions()
		opts.Name, opts.Client, opts.Recorder = "instantiate", h.Client, h.Recorder
		ctx := b.Context()
		var mem float64
		for b.Loop() {
			mod, err := h.Runtime.NewModule(ctx, h.Compiled, opts)
			require.NoError(b, err)
			_, err = mod.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "demo", Name: "absent"}})
			require.NoError(b, err)
			mem = testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("instantiate"))
			require.NoError(b, mod.Close(ctx))
		}
		b.ReportMetric(mem/(1<<20), "MiB/instance")
	})
}
