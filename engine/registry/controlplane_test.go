package registry_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
	"github.com/wre-dev/wre/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunMain(m, &cp)) }

// probeManifest is a script-guest module over ConfigMaps that reads the
// reconciled ConfigMap (from the engine's informer cache) and the default
// ServiceAccount (live, as the impersonated ServiceAccount "nobody", which
// RBAC forbids): a reconcile succeeds only if both behave so.
const probeManifest = `apiVersion: wre.dev/v1alpha1
kind: Module
name: probe
abi: v1
for: {version: v1, resource: configmaps, kind: ConfigMap}
permissions:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [serviceaccounts]
    verbs: [get]
serviceAccountName: nobody
config:
  steps:
    - {op: 1, req: {Version: v1, Resource: configmaps, Kind: ConfigMap, Namespace: $ns, Name: $name}}
    - {op: 1, req: {Version: v1, Resource: serviceaccounts, Kind: ServiceAccount, Namespace: $ns, Name: default}, want: 403}
`

// TestRegistryWithManager loads a module into a real manager: it reconciles
// with cached reads and impersonated live reads, the shared cache holds its
// ConfigMap without the wasm while a new version still loads, and unloading
// it releases the ConfigMap informer it alone used.
func TestRegistryWithManager(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	mgr, reg := startEngine(t, ns, host.RuntimeOptions{})
	kube := kubernetes.NewForConfigOrDie(cp.Config())

	m, err := modules.ParseManifest([]byte(probeManifest))
	require.NoError(t, err)
	cms, err := modules.Package(m, guest(t, ""), modules.PackageOptions{Namespace: ns})
	require.NoError(t, err)
	for _, cm := range cms {
		_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err = kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "object"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	configmaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	require.Eventually(t, func() bool {
		st, ok := status(reg, "probe")
		return ok && st.State == registry.StateLoaded && st.Reconciles > 0
	}, 2*time.Minute, 20*time.Millisecond)
	inf, ok := mgr.Informers().Lookup(configmaps)
	require.True(t, ok, "the module's informer runs")
	time.Sleep(500 * time.Millisecond) // let the initial list drain
	st, _ := status(reg, "probe")
	assert.Zero(t, st.ReconcileErrors, "cached get returned the object and the impersonated get was forbidden")

	// The shared cache holds the module's ConfigMap without its wasm.
	cached, err := inf.Get(ns, modules.PartName("probe", 0))
	require.NoError(t, err)
	assert.NotContains(t, cached.(*corev1.ConfigMap).BinaryData, modules.KeyWasm, "the shared informer caches no module payload")
	assert.Equal(t, cms[0].Data, cached.(*corev1.ConfigMap).Data, "the manifest stays")

	// A new version still loads: the registry reads the parts from the API
	// server, not from a cache.
	next, err := modules.Package(m, guest(t, "v2"), modules.PackageOptions{Namespace: ns})
	require.NoError(t, err)
	for _, cm := range next {
		_, err := kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		st, ok := status(reg, "probe")
		return ok && st.State == registry.StateLoaded && st.Digest == next[0].Annotations[modules.AnnotationDigest]
	}, 2*time.Minute, 20*time.Millisecond)

	require.NoError(t, kube.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: modules.LabelModule}))
	require.Eventually(t, func() bool { _, ok := status(reg, "probe"); return !ok }, time.Minute, 20*time.Millisecond)
	// The module leaves the registry's status first; its controller then stops
	// (letting a reconcile in flight finish) and releases its informers.
	assert.Eventually(t, func() bool { _, ok := mgr.Informers().Lookup(configmaps); return !ok },
		time.Minute, 20*time.Millisecond, "unloading released the informer nobody else uses")
}

// startEngine runs a manager and a registry of the modules in ns on the
// control plane until the test ends; ro configures the wasm runtime (its
// cache directory defaults to wasmtest's), and each of with changes the
// registry's options.
func startEngine(t *testing.T, ns string, ro host.RuntimeOptions, with ...func(*registry.Options)) (*manager.Manager, *registry.Registry) {
	t.Helper()
	mgr, err := manager.New(manager.Options{Config: cp.Config(), MetricsBindAddress: manager.DisabledAddress, HealthProbeBindAddress: manager.DisabledAddress,
		CacheTransform: modules.StripPayload})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(runCtx) }()
	<-mgr.Started()
	if ro.CacheDir == "" {
		ro.CacheDir = wasmtest.DefaultCacheDir()
	}
	rt, err := host.NewRuntime(runCtx, ro)
	require.NoError(t, err)
	opts := registry.Options{
		Namespace: ns, Client: kubernetes.NewForConfigOrDie(cp.Config()), DynamicClient: dynamic.NewForConfigOrDie(cp.Config()), Config: cp.Config(),
		Controllers: mgr, Informers: mgr.Informers(), Runtime: rt, SettleDelay: 10 * time.Millisecond,
	}
	for _, f := range with {
		f(&opts)
	}
	reg, err := registry.New(opts)
	require.NoError(t, err)
	regDone := make(chan error, 1)
	go func() { regDone <- reg.Start(runCtx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-regDone)
		assert.NoError(t, <-mgrDone)
		assert.NoError(t, rt.Close(context.Background()))
	})
	return mgr, reg
}

func status(reg *registry.Registry, name string) (registry.Status, bool) {
	for _, s := range reg.Statuses() {
		if s.Name == name {
			return s, true
		}
	}
	return registry.Status{}, false
}
