package registry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

// newVersion runs the script guest with config; its gets of ConfigMaps
// wait for release to close, then find nothing.
func newVersion(t *testing.T, rt *host.Runtime, digest, config string, release <-chan struct{}) *version {
	t.Helper()
	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	client.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, "a")
	})
	compiled, err := rt.Compile(t.Context(), "demo", wasmtest.Build(t, "../../host/testdata/guests/script"))
	require.NoError(t, err)
	mod, err := rt.NewModule(t.Context(), compiled, host.ModuleOptions{
		Name: "demo", Client: client, Config: []byte(config),
		Permissions: host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
		Primary:     schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, PrimaryKind: "ConfigMap",
	})
	require.NoError(t, err)
	return &version{digest: digest, compiled: compiled, module: mod, reconciler: mod}
}

// TestSwapLetsInFlightReconcilesFinish: a reconcile running on the old
// version when the new one is swapped in finishes there (the old version is
// closed only afterwards), and the next reconcile runs on the new version.
func TestSwapLetsInFlightReconcilesFinish(t *testing.T) {
	rt, err := host.NewRuntime(t.Context(), host.RuntimeOptions{CacheDir: wasmtest.DefaultCacheDir()})
	require.NoError(t, err)
	defer rt.Close(context.Background())
	release := make(chan struct{})
	v1 := newVersion(t, rt, "v1", `{"steps":[{"op":1,"req":{"Version":"v1","Resource":"configmaps","Kind":"ConfigMap","Namespace":"$ns","Name":"$name"},"want":404}]}`, release)
	v2 := newVersion(t, rt, "v2", `{"steps":[]}`, nil)
	s := newSlot(v1)
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}

	inFlight := make(chan error, 1)
	go func() {
		_, err := s.Reconcile(context.Background(), req)
		inFlight <- err
	}()
	require.Eventually(t, func() bool { return v1.module.Instances() == 1 }, time.Minute, time.Millisecond, "v1 is reconciling")

	prev := s.swap(v2)
	assert.Same(t, v1, prev)
	closed := make(chan struct{})
	go func() { prev.close(context.Background()); close(closed) }()

	_, err = s.Reconcile(t.Context(), req)
	require.NoError(t, err, "the new version serves at once")
	assert.Equal(t, 1, v2.module.Instances())
	select {
	case <-closed:
		t.Fatal("the old version closed before its in-flight reconcile ended")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-inFlight, "the in-flight reconcile finished on the old version")
	<-closed
	assert.Equal(t, 0, v1.module.Instances(), "the old version's instances are gone")
	assert.Equal(t, int64(2), s.reconciles.Load())
	assert.Zero(t, s.errors.Load())
	assert.Same(t, v2, s.version())
}

// TestStopRefusesNewReconciles: after stop (engine shutdown), a reconcile
// cannot begin on the version being closed.
func TestStopRefusesNewReconciles(t *testing.T) {
	rt, err := host.NewRuntime(t.Context(), host.RuntimeOptions{CacheDir: wasmtest.DefaultCacheDir()})
	require.NoError(t, err)
	defer rt.Close(context.Background())
	v := newVersion(t, rt, "v1", `{"steps":[]}`, nil)
	s := newSlot(v)
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	_, err = s.Reconcile(t.Context(), req)
	require.NoError(t, err)
	assert.Same(t, v, s.stop())
	v.close(context.Background())
	_, err = s.Reconcile(t.Context(), req)
	assert.ErrorIs(t, err, errStopped)
	assert.Equal(t, int64(1), s.reconciles.Load(), "the refused reconcile did not run")
}
