package registry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/metrics/metricstest"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// hostileManifest is a script-guest module over Widgets whose every reconcile
// runs steps (JSON) under the given limits (YAML lines).
func hostileManifest(t *testing.T, name, limits, steps string) *modules.Manifest {
	t.Helper()
	m, err := modules.ParseManifest([]byte(`apiVersion: wre.dev/v1alpha1
kind: Module
name: ` + name + `
abi: v1
for: {group: demo.wre.dev, version: v1, resource: widgets, kind: Widget}
permissions:
  - apiGroups: [demo.wre.dev]
    resources: [widgets]
    verbs: [get, list, watch]
` + limits + `
config: {steps: ` + steps + `}
`))
	require.NoError(t, err)
	return m
}

// TestHostileModuleBesideAGoodOne loads, into one running engine, a module
// whose reconcile spins forever and one whose reconcile grows its memory past
// the cap, next to a good module, all three over the same Widgets: every
// Widget converges under the good module while both hostile modules keep
// failing with a clear reason (metric, Warning event on the object), stay
// Loaded, and leave no instance behind once unloaded.
func TestHostileModuleBesideAGoodOne(t *testing.T) {
	ctx := t.Context()
	require.NoError(t, enginetest.InstallWidgetCRD(ctx, cp.Config()))
	ns := controlplane.Namespace(t, cp)
	prom := prometheus.NewRegistry()
	hostMetrics, err := host.NewMetrics(prom)
	require.NoError(t, err)
	_, reg := startEngine(t, ns, host.RuntimeOptions{Metrics: hostMetrics})
	kube := kubernetes.NewForConfigOrDie(cp.Config())
	widgets := dynamic.NewForConfigOrDie(cp.Config()).Resource(statussync.GVR).Namespace(ns)

	// The good module sets status.current to "good" (versionManifest's
	// reconcile, under a name of its own).
	good := versionManifest(t, "good")
	good.Name = "good"
	hostile := map[string]struct {
		manifest *modules.Manifest
		reason   string // of wre_guest_traps_total and in the event message
		message  string // in the event message
	}{
		"spin": {hostileManifest(t, "spin", "reconcileTimeout: 300ms", `[{loop: true}]`), host.TrapTimeout, "deadline exceeded"},
		"hog":  {hostileManifest(t, "hog", "memoryLimit: 16Mi", `[{grow: true}]`), host.TrapOOM, "out of memory"},
	}
	names := []string{"good", "spin", "hog"}
	manifests := []*modules.Manifest{good, hostile["spin"].manifest, hostile["hog"].manifest}

	start := time.Now()
	wasm := guest(t, "")
	for _, m := range manifests {
		cms, err := modules.Package(m, wasm, modules.PackageOptions{Namespace: ns})
		require.NoError(t, err)
		for _, cm := range cms {
			_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			require.NoError(t, err)
		}
	}
	require.Eventually(t, func() bool {
		for _, name := range names {
			if st, ok := status(reg, name); !ok || st.State != registry.StateLoaded {
				return false
			}
		}
		return true
	}, 2*time.Minute, 10*time.Millisecond, "all three modules load")
	t.Logf("3 modules loaded in %s", time.Since(start))

	traps := func(module, reason string) float64 {
		v, _ := metricstest.Lookup(t, prom, "wre_guest_traps_total", map[string]string{"module": module, "reason": reason})
		return v
	}
	// converged waits until every named Widget has the good module's status and
	// each hostile module has recorded a Warning event on it, checking on every
	// poll that the hostile modules stay Loaded.
	converged := func(objects ...string) {
		t.Helper()
		start, goodAt := time.Now(), time.Duration(0)
		var notLoaded []registry.Status // ends the wait at once
		require.Eventually(t, func() bool {
			for name := range hostile {
				if st, _ := status(reg, name); st.State != registry.StateLoaded {
					notLoaded = append(notLoaded, st)
				}
			}
			if notLoaded != nil {
				return true
			}
			for _, o := range objects {
				w, err := widgets.Get(ctx, o, metav1.GetOptions{})
				require.NoError(t, err)
				if current, _, _ := unstructured.NestedString(w.Object, "status", "current"); current != "good" {
					return false
				}
			}
			if goodAt == 0 {
				goodAt = time.Since(start)
			}
			events, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=ReconcileTrapped"})
			require.NoError(t, err)
			trapped := map[string]bool{} // module/object
			for _, e := range events.Items {
				for name, h := range hostile {
					if strings.HasPrefix(e.Message, "module "+name+": reconcile failed ("+h.reason+"), instance discarded: ") {
						assert.Equal(t, corev1.EventTypeWarning, e.Type)
						assert.Equal(t, "Widget", e.InvolvedObject.Kind)
						assert.Contains(t, e.Message, h.message)
						trapped[name+"/"+e.InvolvedObject.Name] = true
					}
				}
			}
			for _, o := range objects {
				for name := range hostile {
					if !trapped[name+"/"+o] {
						return false
					}
				}
			}
			return true
		}, 2*time.Minute, 50*time.Millisecond, "widgets %v converge under the good module and carry both hostile modules' events", objects)
		require.Empty(t, notLoaded, "a failing reconcile is no load failure: the hostile modules stay Loaded")
		t.Logf("widgets %v: good status in %s, both hostile modules' events in %s", objects, goodAt, time.Since(start))
	}
	create := func(name string) {
		t.Helper()
		w := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
			"metadata": map[string]any{"name": name}, "spec": map[string]any{"desired": "x"}}}
		_, err := widgets.Create(ctx, w, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	// Widgets for all three modules at once.
	objects := []string{"w0", "w1", "w2", "w3", "w4", "w5"}
	for _, o := range objects {
		create(o)
	}
	converged(objects...)
	before := map[string]float64{}
	for name, h := range hostile {
		before[name] = traps(name, h.reason)
		assert.GreaterOrEqual(t, before[name], float64(len(objects)), "module %s trapped (%s) on every widget", name, h.reason)
		st, _ := status(reg, name)
		assert.Positive(t, st.ReconcileErrors, "module %s's status counts its failed reconciles", name)
	}
	for _, reason := range []string{host.TrapTimeout, host.TrapOOM, host.TrapPanic, host.TrapWasm, host.TrapProtocol, host.TrapInit} {
		assert.Zero(t, traps("good", reason), "the good module never traps (%s)", reason)
	}
	goodInstances, _ := metricstest.Lookup(t, prom, "wre_module_instances", map[string]string{"module": "good"})
	assert.Positive(t, goodInstances, "the good module keeps its instances")

	// The engine keeps going: a Widget created now converges too, while both
	// hostile modules fail on it as well.
	t.Logf("traps so far: %v", before)
	create("late")
	converged("late")
	for name, h := range hostile {
		assert.Greater(t, traps(name, h.reason), before[name], "module %s keeps failing", name)
	}

	// Unloading the modules releases every instance, the spinning one's too.
	start = time.Now()
	require.NoError(t, kube.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: modules.LabelModule}))
	require.Eventually(t, func() bool {
		for _, name := range names {
			if _, ok := status(reg, name); ok {
				return false
			}
			// The series goes with the module; a remaining one must read 0.
			if v, _ := metricstest.Lookup(t, prom, "wre_module_instances", map[string]string{"module": name}); v != 0 {
				return false
			}
			if v, _ := metricstest.Lookup(t, prom, "wre_guest_memory_bytes", map[string]string{"module": name}); v != 0 {
				return false
			}
		}
		return true
	}, time.Minute, 10*time.Millisecond, "unloaded modules hold no instances")
	t.Logf("3 modules unloaded, 0 instances left, in %s", time.Since(start))
}
