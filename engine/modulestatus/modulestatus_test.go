package modulestatus_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/wre-dev/wre/engine/modulestatus"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunMain(m, &cp)) }

// crdOnce installs deploy/base/wremodule-crd.yaml, the CRD operators install,
// once for the package's control plane.
var crdOnce sync.Once

func installCRD(t *testing.T) {
	t.Helper()
	crdOnce.Do(func() {
		raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "base", "wremodule-crd.yaml"))
		require.NoError(t, err)
		var crd apiextensionsv1.CustomResourceDefinition
		require.NoError(t, yaml.UnmarshalStrict(raw, &crd))
		require.NoError(t, enginetest.InstallCRD(t.Context(), cp.Config(), &crd))
	})
}

// source is a Source whose statuses the test sets.
type source struct {
	mu       sync.Mutex
	statuses []registry.Status
}

func (s *source) set(st ...registry.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses = st
}

func (s *source) Statuses() []registry.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]registry.Status(nil), s.statuses...)
}

const (
	v1Digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	v2Digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func newPublisher(t *testing.T, ns string, src modulestatus.Source, leading func() bool) (*modulestatus.Publisher, dynamic.ResourceInterface) {
	t.Helper()
	installCRD(t)
	client := dynamic.NewForConfigOrDie(cp.Config())
	p, err := modulestatus.New(modulestatus.Options{
		Namespace: ns, Client: client, Source: src, Leading: leading, Identity: "wre-0",
		Now: func() time.Time { return time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC) },
	})
	require.NoError(t, err)
	return p, client.Resource(modulestatus.GVR).Namespace(ns)
}

func get(t *testing.T, res dynamic.ResourceInterface, name string) map[string]any {
	t.Helper()
	obj, err := res.Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	st, _, _ := unstructured.NestedMap(obj.Object, "status")
	return st
}

// TestVersionSwap follows one module through a version swap as the registry
// reports it: Ready on v1, Degraded while v1 serves and v2 failed to load,
// Ready on v2, and deleted when the module is gone.
func TestVersionSwap(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	src := &source{}
	p, res := newPublisher(t, ns, src, nil)
	loaded := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)

	src.set(registry.Status{Name: "status-sync", Digest: v1Digest, ABI: "v2", State: registry.StateLoaded, LoadedAt: &loaded, Instances: 2, Reconciles: 10, ReconcileErrors: 1})
	require.NoError(t, p.Sync(ctx))
	st := get(t, res, "status-sync")
	assert.Equal(t, map[string]any{
		"phase": "Ready", "digest": v1Digest, "version": "sha256:111111111111", "abi": "v2",
		"loadedAt": "2026-12-06T11:00:00Z", "instances": int64(2), "reconciles": int64(10), "reconcileErrors": int64(1),
		"servedBy": "wre-0",
	}, st)
	obj, err := res.Get(ctx, "status-sync", metav1.GetOptions{})
	require.NoError(t, err)
	spec, _, _ := unstructured.NestedString(obj.Object, "spec", "configMap")
	assert.Equal(t, "wre-module-status-sync", spec, "spec names the source of truth")

	src.set(registry.Status{Name: "status-sync", Digest: v1Digest, ABI: "v2", State: registry.StateLoadFailed, LastError: "module.wasm: missing export wre_abi_v2", LoadedAt: &loaded, Reconciles: 12})
	require.NoError(t, p.Sync(ctx))
	st = get(t, res, "status-sync")
	assert.Equal(t, "Degraded", st["phase"], "the old version still serves")
	assert.Equal(t, v1Digest, st["digest"])
	assert.Equal(t, "module.wasm: missing export wre_abi_v2", st["lastError"])
	assert.Equal(t, "2026-12-06T12:00:00Z", st["lastErrorAt"])

	loaded2 := loaded.Add(time.Hour)
	src.set(registry.Status{Name: "status-sync", Digest: v2Digest, ABI: "v2", State: registry.StateLoaded, LoadedAt: &loaded2, Reconciles: 13})
	require.NoError(t, p.Sync(ctx))
	st = get(t, res, "status-sync")
	assert.Equal(t, "Ready", st["phase"])
	assert.Equal(t, "sha256:222222222222", st["version"])
	assert.NotContains(t, st, "lastError", "a successful load clears the error")

	src.set()
	require.NoError(t, p.Sync(ctx))
	_, err = res.Get(ctx, "status-sync", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the WreModule of a removed module is deleted: %v", err)
}

// TestFailedAndForeignObjects: a module that never loaded is Failed, and the
// publisher leaves WreModules it does not manage alone.
func TestFailedAndForeignObjects(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	src := &source{}
	p, res := newPublisher(t, ns, src, nil)
	foreign := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wre.dev/v1alpha1", "kind": "WreModule", "metadata": map[string]any{"name": "hand-made"},
	}}
	_, err := res.Create(ctx, foreign, metav1.CreateOptions{})
	require.NoError(t, err)

	src.set(registry.Status{Name: "broken", State: registry.StateLoadFailed, LastError: "zstd: corrupt input"})
	require.NoError(t, p.Sync(ctx))
	st := get(t, res, "broken")
	assert.Equal(t, "Failed", st["phase"])
	assert.NotContains(t, st, "digest")
	_, err = res.Get(ctx, "hand-made", metav1.GetOptions{})
	assert.NoError(t, err, "an object the engine did not create is never deleted")
}

// countingSource counts how often the publisher asks for statuses.
type countingSource struct {
	source
	calls atomic.Int32
}

func (s *countingSource) Statuses() []registry.Status {
	s.calls.Add(1)
	return s.source.Statuses()
}

// TestWritesOnlyWhileLeading: a standby writes nothing; once it leads it
// writes every module, and an unchanged status is not written again.
func TestWritesOnlyWhileLeading(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	src := &countingSource{}
	var leading atomic.Bool
	p, res := newPublisher(t, ns, src, leading.Load)
	src.set(registry.Status{Name: "m", Digest: v1Digest, State: registry.StateLoaded})

	require.NoError(t, p.Sync(ctx))
	assert.Zero(t, src.calls.Load(), "a standby does not even read the statuses")
	_, err := res.Get(ctx, "m", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))

	leading.Store(true)
	require.NoError(t, p.Sync(ctx))
	obj, err := res.Get(ctx, "m", metav1.GetOptions{})
	require.NoError(t, err)
	rv := obj.GetResourceVersion()
	require.NoError(t, p.Sync(ctx))
	obj, err = res.Get(ctx, "m", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, rv, obj.GetResourceVersion(), "an unchanged status is not written again")

	// Deleted by hand: the next pass recreates it.
	require.NoError(t, res.Delete(ctx, "m", metav1.DeleteOptions{}))
	require.NoError(t, p.Sync(ctx))
	_, err = res.Get(ctx, "m", metav1.GetOptions{})
	assert.NoError(t, err)
}

// TestRunSurvivesMissingRights: without RBAC on wremodules the publisher
// logs, keeps retrying and returns when its context ends.
func TestRunSurvivesMissingRights(t *testing.T) {
	installCRD(t)
	ns := controlplane.Namespace(t, cp)
	src := &source{}
	src.set(registry.Status{Name: "m", Digest: v1Digest, State: registry.StateLoaded})
	client := dynamic.NewForConfigOrDie(cp.ConfigFor("nobody"))
	var logged atomic.Int32
	p, err := modulestatus.New(modulestatus.Options{
		Namespace: ns, Client: client, Source: src, Interval: 10 * time.Millisecond,
		Logger: logr.New(countSink{&logged}),
	})
	require.NoError(t, err)
	require.Error(t, p.Sync(t.Context()), "forbidden")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	p.Run(ctx) // returns at the deadline
	assert.Equal(t, int32(1), logged.Load(), "one error log for a failure that persists, not one per pass")
}

// countSink counts error logs.
type countSink struct{ n *atomic.Int32 }

func (countSink) Init(logr.RuntimeInfo)            {}
func (countSink) Enabled(int) bool                 { return true }
func (countSink) Info(int, string, ...any)         {}
func (s countSink) Error(error, string, ...any)    { s.n.Add(1) }
func (s countSink) WithValues(...any) logr.LogSink { return s }
func (s countSink) WithName(string) logr.LogSink   { return s }
func TestNewRequiresOptions(t *testing.T) {
	_, err := modulestatus.New(modulestatus.Options{})
	assert.ErrorContains(t, err, "required")
}

func TestShortDigest(t *testing.T) {
	assert.Equal(t, "sha256:111111111111", modulestatus.ShortDigest(v1Digest))
	assert.Equal(t, "abc", modulestatus.ShortDigest("abc"))
}
