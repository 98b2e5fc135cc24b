package host_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/engine/reconcile"
	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
)

func TestCompileSharesCodeByDigest(t *testing.T) {
	ctx := context.WithoutCancel(t.Context())
	reg := prometheus.NewRegistry()
	metrics, err := host.NewMetrics(reg)
	require.NoError(t, err)
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: t.TempDir(), Metrics: metrics})
	require.NoError(t, err)
	defer rt.Close(ctx)
	wasm := wasmModule(true, nil, abiFuncs(abi.MarkerV1, i64Const0))
	a, err := rt.Compile(ctx, "a", wasm)
	require.NoError(t, err)
	b, err := rt.Compile(ctx, "b", wasm)
	require.NoError(t, err)
	sum := sha256.Sum256(wasm)
	assert.Equal(t, hex.EncodeToString(sum[:]), a.Digest())
	assert.Equal(t, a.Digest(), b.Digest())
	assert.Equal(t, "a", a.Name())
	assert.Equal(t, abi.MarkerV1, b.ABIVersion())
	assert.Equal(t, 1, testutil.CollectAndCount(metrics.CompileSeconds), "compiled once")

	require.NoError(t, a.Close(ctx))
	m, err := rt.NewModule(ctx, b, host.ModuleOptions{Name: "b", Client: fakeClient(), Primary: configMaps, PrimaryKind: "ConfigMap"})
	require.NoError(t, err, "b's code survives closing a")
	assert.Equal(t, "b", m.Name())
	_, err = m.Reconcile(t.Context(), reconcile.Request{})
	require.NoError(t, err)
	require.NoError(t, m.Close(ctx))
	require.NoError(t, b.Close(ctx))

	_, err = host.NewMetrics(reg)
	assert.Error(t, err, "registering the collectors twice fails")
}

func TestBrokenAllocatorsAndInitializers(t *testing.T) {
	withAlloc := func(allocBody []byte) []wfunc {
		fs := abiFuncs(abi.MarkerV1, i64Const0)
		fs[1].body = allocBody
		return fs
	}
	cases := []struct {
		name, reason, message string
		funcs                 []wfunc
	}{
		{"allocator returns 0", host.TrapProtocol, "ABI violation: wre_alloc(", withAlloc([]byte{0x41, 0x00})},
		{"allocator returns a pointer outside memory", host.TrapProtocol, "outside memory", withAlloc([]byte{0x41, 0x80, 0x7e})}, // -256
		{"allocator traps", host.TrapWasm, "unreachable", withAlloc(unreachable)},
		{"_initialize traps", host.TrapInit, `module "test": reconcile ns/x: init: `, append(abiFuncs(abi.MarkerV1, i64Const0), wfunc{name: "_initialize", body: unreachable})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := wasmtest.New(t, wasmModule(true, nil, c.funcs), wasmtest.Options{})
			_, err := h.Reconcile(t.Context(), "ns", "x")
			require.ErrorContains(t, err, c.message)
			assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", c.reason)))
			assert.Equal(t, 0, h.Module.Instances())
			events := h.Events()
			require.Len(t, events, 1)
			assert.Contains(t, events[0], "Warning ReconcileTrapped module test: reconcile failed ("+c.reason+"), instance discarded: ")
			assertHostStillWorksHandWritten(t, h.Runtime)
		})
	}
}

// failingReader answers every read with a plain (non-API) error.
type failingReader struct{}

func (failingReader) Get(string, string) (runtime.Object, error) {
	return nil, errors.New("cache exploded")
}

func (failingReader) List(string, metav1.ListOptions) ([]runtime.Object, string, error) {
	return nil, "", errors.New("cache exploded")
}

func TestCacheFuncAndInternalErrors(t *testing.T) {
	cache := host.CacheFunc(func(gvr schema.GroupVersionResource) (host.CacheReader, bool) {
		return failingReader{}, gvr == configMaps
	})
	h := run(t, script{}, wasmtest.Options{})
	m, err := h.Runtime.NewModule(t.Context(), h.Compiled, host.ModuleOptions{
		Name: "cached", Client: h.Client, Cache: cache, Primary: configMaps, PrimaryKind: "ConfigMap",
		Permissions: host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}}},
		Config: mustJSON(t, script{Steps: []step{
			{Op: abi.OpGet, Req: cmReq("ns", "a"), Want: 500, WantReason: "InternalError"},
			{Op: abi.OpList, Req: cmReq("ns", ""), Want: 500},
			{Op: abi.OpGet, Req: with(cmReq("ns", "a"), func(r *abi.Request) { r.Live = true }), Want: 404},
		}}),
	})
	require.NoError(t, err)
	defer m.Close(context.WithoutCancel(t.Context()))
	_, err = m.Reconcile(t.Context(), reconcile.Request{})
	require.NoError(t, err)
}
