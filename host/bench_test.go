package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
	"github.com/wre-dev/wre/test/benchcpu"
	"github.com/wre-dev/wre/test/benchmem"
)

// Run all with:
//   go test -run '^$' -bench . -benchmem -count 6 ./host/ | tee bench.txt; benchstat bench.txt

func deployment() *appsv1.Deployment {
	labels := map[string]string{"app": "web", "tier": "frontend"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: labels, UID: "0b8f5a4e-1a2b-4c3d-8e9f-001122334455",
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "3"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: "registry.example.com/web:1.2.3",
					Ports:     []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					Env:       []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "LOG", Value: "info"}},
					Resources: corev1.ResourceRequirements{},
				}}},
			},
		},
		Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, ObservedGeneration: 4},
	}
}

// BenchmarkGetDeployment gets a cached Deployment through the host 10 times per
// reconcile and decodes it in the guest into appsv1.Deployment: protobuf
// (generated Unmarshal) versus JSON (encoding/json). ns/op is per reconcile.
func BenchmarkGetDeployment(b *testing.B) {
	wasm := wasmtest.Build(b, "testdata/guests/getdeploy")
	for _, enc := range []struct{ name, accept string }{{"protobuf", abi.ContentTypeProtobuf}, {"json", abi.ContentTypeJSON}} {
		for _, mode := range timeoutModes {
			b.Run("encoding="+enc.name+"/"+mode.name, func(b *testing.B) {
				getDeployment(b, wasm, enc.accept, mode.opts)
			})
		}
	}
}

// timeoutModes run guests with wazero's loop checks (the default) and without
// (RuntimeOptions.TrustedGuests). The runtime keeps their compiled code in
// separate subdirectories of the cache directory.
var timeoutModes = []struct {
	name string
	opts host.RuntimeOptions
}{
	{"closeOnContextDone=on", host.RuntimeOptions{}},
	{"closeOnContextDone=off", host.RuntimeOptions{TrustedGuests: true}},
}

func getDeployment(b *testing.B, wasm []byte, accept string, ro host.RuntimeOptions) {
	cfg, _ := json.Marshal(map[string]any{"accept": accept, "n": 10})
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	h := wasmtest.New(b, wasm, wasmtest.Options{
		Runtime: ro,
		Objects: []runtime.Object{deployment()},
		Cached:  []schema.GroupVersionResource{deployments},
		Module:  host.ModuleOptions{Config: cfg, Primary: deployments, PrimaryKind: "Deployment"},
	})
	ctx := b.Context()
	if _, err := h.Reconcile(ctx, "ns", "web"); err != nil {
		b.Fatal(err)
	}
	report := benchcpu.Start(b)
	for b.Loop() {
		if _, err := h.Reconcile(ctx, "ns", "web"); err != nil {
			b.Fatal(err)
		}
	}
	report()
}

// BenchmarkTimeoutMechanism runs a guest that spins 10M loop iterations with
// wazero's close-on-context-done (which makes a reconcile timeout able to stop
// a loop) on and off.
func BenchmarkTimeoutMechanism(b *testing.B) {
	cfg, _ := json.Marshal(script{Steps: []step{{Spin: 10_000_000}}})
	for _, mode := range timeoutModes {
		b.Run(mode.name, func(b *testing.B) {
			h := wasmtest.New(b, scriptGuest(b), wasmtest.Options{Runtime: mode.opts, Module: host.ModuleOptions{Config: cfg}})
			ctx := b.Context()
			if _, err := h.Reconcile(ctx, "ns", "a"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.Reconcile(ctx, "ns", "a"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGCDuringGuestLoop measures how long a garbage collection takes
// while a guest spins (100M iterations, no host call). Without loop checks
// (TrustedGuests) the spinning goroutine runs machine code that Go cannot
// preempt, so the collection's stop-the-world phase, and with it every
// goroutine of the process, waits until the guest leaves its loop.
func BenchmarkGCDuringGuestLoop(b *testing.B) {
	cfg, _ := json.Marshal(script{Steps: []step{{Spin: 100_000_000}}})
	for _, mode := range timeoutModes {
		b.Run(mode.name, func(b *testing.B) {
			h := wasmtest.New(b, scriptGuest(b), wasmtest.Options{Runtime: mode.opts, Module: host.ModuleOptions{Config: cfg}})
			ctx := b.Context()
			if err := h.Module.Warm(ctx); err != nil {
				b.Fatal(err)
			}
			var gc time.Duration
			for b.Loop() {
				done := make(chan error, 1)
				go func() {
					_, err := h.Reconcile(ctx, "ns", "a")
					done <- err
				}()
				time.Sleep(100 * time.Millisecond) // into the loop
				start := time.Now()
				goruntime.GC()
				gc += time.Since(start)
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(gc.Milliseconds())/float64(b.N), "gc-ms/op")
		})
	}
}

// BenchmarkInstance creates and initializes a fresh instance per op (the
// script guest, a standard-library Go reactor) and reports its linear memory.
func BenchmarkInstance(b *testing.B) {
	h := wasmtest.New(b, scriptGuest(b), wasmtest.Options{Module: host.ModuleOptions{MaxReconcilesPerInstance: 1}})
	ctx := b.Context()
	var mem float64
	for b.Loop() {
		// MaxReconcilesPerInstance=1: every reconcile instantiates, runs
		// _initialize, reconciles and discards.
		m, err := h.Runtime.NewModule(ctx, h.Compiled, host.ModuleOptions{Name: "mem", Client: h.Client, Primary: configMaps, PrimaryKind: "ConfigMap"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Reconcile(ctx, reconcile.Request{}); err != nil {
			b.Fatal(err)
		}
		mem = testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("mem"))
		if err := m.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(mem, "linear-bytes/instance")
}

// BenchmarkInstances holds instancesHeld idle instances of the script guest
// at once (one warmed Module each) and reports what each costs the process:
// Go heap in use and resident set size, both measured after a GC, minus
// their values before the instances were created.
func BenchmarkInstances(b *testing.B) {
	const instancesHeld = 20
	h := wasmtest.New(b, scriptGuest(b), wasmtest.Options{})
	ctx := b.Context()
	var heap, rss float64
	for b.Loop() {
		heap0, rss0 := benchmem.Footprint()
		mods := make([]*host.Module, instancesHeld)
		for i := range mods {
			m, err := h.Runtime.NewModule(ctx, h.Compiled, host.ModuleOptions{Name: fmt.Sprintf("held-%d", i), Client: h.Client, Primary: configMaps, PrimaryKind: "ConfigMap"})
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Warm(ctx); err != nil {
				b.Fatal(err)
			}
			mods[i] = m
		}
		heap1, rss1 := benchmem.Footprint()
		heap, rss = float64(heap1-heap0)/instancesHeld, float64(rss1-rss0)/instancesHeld
		for _, m := range mods {
			if err := m.Close(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(heap/(1<<20), "heap-MiB/instance")
	b.ReportMetric(rss/(1<<20), "rss-MiB/instance")
}

// BenchmarkCompile compiles the script guest (3.4 MB) in a new runtime per op:
// cold with an empty cache directory, cached with a warm one.
func BenchmarkCompile(b *testing.B) {
	wasm := scriptGuest(b)
	compile := func(b *testing.B, dir string) {
		ctx := context.Background()
		rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close(ctx)
		if _, err := rt.Compile(ctx, "bench", wasm); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("cache=cold", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			compile(b, fmt.Sprintf("%s/%d", b.TempDir(), i))
		}
	})
	b.Run("cache=warm", func(b *testing.B) {
		dir := b.TempDir()
		compile(b, dir)
		for b.Loop() {
			compile(b, dir)
		}
	})
}

// BenchmarkReconcileV2Floor measures what the host and wazero cost for one
// ABI v2 reconcile of a guest that does nothing: a hand-written one (its
// buffer is a fixed region, its reconcile returns 0; guest=raw) and the
// smallest Go guest (guest=go: what a Go wasmexport entry adds), with loop
// checks on (impl=wasm) and off (impl=wasm-trusted). It is the floor under
// every v2 module's figure in BenchmarkStatusSync.
func BenchmarkReconcileV2Floor(b *testing.B) {
	raw := wasmModulePages(2, nil, v2Funcs(i32Const1024, i64Const0))
	goGuest := wasmtest.Build(b, "testdata/guests/v2floor")
	for _, impl := range []struct {
		name    string
		wasm    []byte
		trusted bool
	}{{"guest=raw/impl=wasm", raw, false}, {"guest=raw/impl=wasm-trusted", raw, true},
		{"guest=go/impl=wasm", goGuest, false}, {"guest=go/impl=wasm-trusted", goGuest, true}} {
		b.Run(impl.name, func(b *testing.B) {
			h := wasmtest.New(b, impl.wasm, wasmtest.Options{Runtime: host.RuntimeOptions{TrustedGuests: impl.trusted}})
			req := reconcile.Request{}
			req.Namespace, req.Name = "ns", "obj"
			if _, err := h.Module.Reconcile(b.Context(), req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			report := benchcpu.Start(b)
			for b.Loop() {
				if _, err := h.Module.Reconcile(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
			report()
		})
	}
}
