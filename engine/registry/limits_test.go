package registry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// TestCeilingsRefuseOnlyTheModuleAskingForMore loads, into an engine whose
// policy caps memory at 256Mi and concurrency at 8, a module asking for
// 64 GiB of memory and one asking for 10000 workers, beside a good module:
// both are refused at load (LoadFailed PolicyViolation naming the limit, the
// ask and the ceiling) while the good module loads and reconciles.
func TestCeilingsRefuseOnlyTheModuleAskingForMore(t *testing.T) {
	ctx := t.Context()
	require.NoError(t, enginetest.InstallWidgetCRD(ctx, cp.Config()))
	ns := controlplane.Namespace(t, cp)
	policy := *modules.AllowAll
	policy.Limits = modules.Limits{MemoryBytes: 256 << 20, Concurrency: 8}
	_, reg := startEngine(t, ns, host.RuntimeOptions{}, func(o *registry.Options) { o.Policy = &policy })
	kube := kubernetes.NewForConfigOrDie(cp.Config())
	widgets := dynamic.NewForConfigOrDie(cp.Config()).Resource(statussync.GVR).Namespace(ns)

	good := versionManifest(t, "good")
	good.Name = "good"
	refused := map[string]struct {
		manifest *modules.Manifest
		want     string
	}{
		"memory":  {hostileManifest(t, "memory", "memoryLimit: 64Gi", `[]`), "memoryLimit 64Gi is above the engine's ceiling of 256Mi (wre run --max-module-memory or policy limits.memory)"},
		"workers": {hostileManifest(t, "workers", "concurrency: 10000", `[]`), "concurrency 10000 is above the engine's ceiling of 8 (wre run --max-module-concurrency or policy limits.concurrency)"},
	}
	wasm := guest(t, "")
	for _, m := range []*modules.Manifest{good, refused["memory"].manifest, refused["workers"].manifest} {
		cms, err := modules.Package(m, wasm, modules.PackageOptions{Namespace: ns})
		require.NoError(t, err)
		for _, cm := range cms {
			_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			require.NoError(t, err)
		}
	}
	_, err := widgets.Create(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w"}, "spec": map[string]any{"desired": "x"}}}, metav1.CreateOptions{})
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		for name := range refused {
			if st, ok := status(reg, name); !ok || st.State != registry.StateLoadFailed {
				return false
			}
		}
		w, err := widgets.Get(ctx, "w", metav1.GetOptions{})
		require.NoError(t, err)
		current, _, _ := unstructured.NestedString(w.Object, "status", "current")
		return current == "good"
	}, 2*time.Minute, 20*time.Millisecond, "both modules asking too much are refused while the good one reconciles")

	st, _ := status(reg, "good")
	assert.Equal(t, registry.StateLoaded, st.State)
	assert.Positive(t, st.Reconciles)
	for name, r := range refused {
		st, _ := status(reg, name)
		assert.Empty(t, st.Digest, "no version of %s runs", name)
		assert.Contains(t, st.LastError, `PolicyViolation: module "`+name+`" exceeds the engine policy: `+r.want)
	}
	require.Eventually(t, func() bool {
		events, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + registry.ReasonLoadFailed})
		require.NoError(t, err)
		seen := 0
		for _, e := range events.Items {
			for name, r := range refused {
				if e.Type == "Warning" && e.InvolvedObject.Kind == "ConfigMap" && strings.Contains(e.InvolvedObject.Name, name) && strings.Contains(e.Message, r.want) {
					seen++
				}
			}
		}
		return seen == len(refused)
	}, time.Minute, 50*time.Millisecond, "a Warning LoadFailed event on each refused module's ConfigMap names the limit")
}

// TestAStuckModuleDelaysOnlyItself loads a module whose _initialize never
// returns and, once its load has begun, a good module: the good one loads
// and reconciles before the stuck one's init timeout (modules load in
// parallel), and the stuck one then fails to load with an error naming
// _initialize and the timeout.
func TestAStuckModuleDelaysOnlyItself(t *testing.T) {
	ctx := t.Context()
	require.NoError(t, enginetest.InstallWidgetCRD(ctx, cp.Config()))
	ns := controlplane.Namespace(t, cp)
	_, reg := startEngine(t, ns, host.RuntimeOptions{})
	kube := kubernetes.NewForConfigOrDie(cp.Config())
	widgets := dynamic.NewForConfigOrDie(cp.Config()).Resource(statussync.GVR).Namespace(ns)
	wasm := guest(t, "")
	apply := func(m *modules.Manifest) {
		t.Helper()
		cms, err := modules.Package(m, wasm, modules.PackageOptions{Namespace: ns})
		require.NoError(t, err)
		for _, cm := range cms {
			_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			require.NoError(t, err)
		}
	}

	const initTimeout = 20 * time.Second
	apply(hostileManifest(t, "stuck", "initTimeout: 20s", `[], stuckInit: true`))
	require.Eventually(t, func() bool { _, ok := status(reg, "stuck"); return ok }, time.Minute, 10*time.Millisecond, "the stuck module's load begins")
	begun := time.Now()
	good := versionManifest(t, "good")
	good.Name = "good"
	apply(good)
	_, err := widgets.Create(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w"}, "spec": map[string]any{"desired": "x"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		w, err := widgets.Get(ctx, "w", metav1.GetOptions{})
		require.NoError(t, err)
		current, _, _ := unstructured.NestedString(w.Object, "status", "current")
		return current == "good"
	}, initTimeout, 20*time.Millisecond, "the good module loads and reconciles while the stuck one initializes")
	t.Logf("the good module reconciled %s after the stuck module's load began", time.Since(begun).Round(time.Millisecond))
	st, _ := status(reg, "stuck")
	assert.NotEqual(t, registry.StateLoadFailed, st.State, "the stuck module is still initializing")

	require.Eventually(t, func() bool {
		st, _ = status(reg, "stuck")
		return st.State == registry.StateLoadFailed
	}, time.Minute, 20*time.Millisecond)
	assert.Contains(t, st.LastError, "InstantiateFailed: ")
	assert.Contains(t, st.LastError, "_initialize did not return within the init timeout of 20s")
	assert.GreaterOrEqual(t, time.Since(begun), initTimeout-time.Second, "it failed at its own init timeout")
}
