package host_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
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
		{"_initialize never returns", host.TrapInit, `module "test": reconcile ns/x: init: _initialize did not return within the init timeout of 200ms: `,
			append(abiFuncs(abi.MarkerV1, i64Const0), wfunc{name: "_initialize", body: spinForever})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := wasmtest.New(t, wasmModule(true, nil, c.funcs), wasmtest.Options{Module: host.ModuleOptions{InitTimeout: 200 * time.Millisecond}})
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

// TestCompileIsSingleFlightPerDigest: concurrent compiles of the same bytes
// compile once and share the code; a compile of other bytes, and closing a
// compiled module, do not wait for it; a caller waiting for someone else's
// compile can give up.
func TestCompileIsSingleFlightPerDigest(t *testing.T) {
	ctx := context.WithoutCancel(t.Context())
	metrics, err := host.NewMetrics(nil)
	require.NoError(t, err)
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{Metrics: metrics})
	require.NoError(t, err)
	defer rt.Close(ctx)
	slow := wasmModule(true, nil, abiFuncs(abi.MarkerV1, i64Const0))
	other := wasmModule(true, nil, abiFuncs(abi.MarkerV1, unreachable))
	third := wasmModule(true, nil, abiFuncs(abi.MarkerV1, []byte{0x42, 0x01}))
	open, err := rt.Compile(ctx, "open", third)
	require.NoError(t, err)

	sum := sha256.Sum256(slow)
	slowDigest := hex.EncodeToString(sum[:])
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	compiles := map[string]int{}
	host.SetCompileHook(rt, func(digest string) {
		mu.Lock()
		compiles[digest]++
		mu.Unlock()
		if digest == slowDigest {
			close(entered)
			<-release
		}
	})

	const callers = 4
	results := make(chan *host.CompiledModule, callers)
	errs := make(chan error, callers)
	for range callers {
		go func() {
			c, err := rt.Compile(ctx, "slow", slow)
			results <- c
			errs <- err
		}()
	}
	<-entered
	require.Eventually(t, func() bool { return host.CompileWaiters(rt, slow) == callers-1 }, 10*time.Second, time.Millisecond)

	within := func(what string, f func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			require.NoError(t, err, what)
		case <-time.After(5 * time.Second):
			close(release)
			t.Fatalf("%s waits for another digest's compile", what)
		}
	}
	within("compiling other bytes", func() error {
		c, err := rt.Compile(ctx, "other", other)
		if err == nil {
			err = c.Close(ctx)
		}
		return err
	})
	within("closing a compiled module", func() error { return open.Close(ctx) })
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = rt.Compile(canceled, "impatient", slow)
	require.ErrorIs(t, err, context.Canceled, "a waiter gives up when its context ends")

	close(release)
	var got []*host.CompiledModule
	for range callers {
		require.NoError(t, <-errs)
		got = append(got, <-results)
	}
	for _, c := range got {
		assert.Equal(t, slowDigest, c.Digest())
		require.NoError(t, c.Close(ctx))
	}
	mu.Lock()
	assert.Equal(t, 1, compiles[slowDigest], "the same bytes compile once")
	mu.Unlock()
	var compiled dto.Metric
	require.NoError(t, metrics.CompileSeconds.Write(&compiled))
	assert.EqualValues(t, 3, compiled.GetHistogram().GetSampleCount(), "open, other and slow compiled once each")
}

// TestConcurrentCompilesShareAnError: callers waiting for a compile that
// fails get its error; none compiles the bytes again.
func TestConcurrentCompilesShareAnError(t *testing.T) {
	ctx := context.WithoutCancel(t.Context())
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{})
	require.NoError(t, err)
	defer rt.Close(ctx)
	bad := wasmModule(true, nil, abiFuncs("wre_abi_v7", i64Const0))
	var compiles atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	host.SetCompileHook(rt, func(string) {
		if compiles.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	errs := make(chan error, 3)
	go func() { _, err := rt.Compile(ctx, "bad", bad); errs <- err }()
	<-entered
	for range 2 {
		go func() { _, err := rt.Compile(ctx, "bad", bad); errs <- err }()
	}
	require.Eventually(t, func() bool { return host.CompileWaiters(rt, bad) == 2 }, 10*time.Second, time.Millisecond)
	close(release)
	for range 3 {
		assert.ErrorContains(t, <-errs, `compile module "bad": unsupported ABI`)
	}
	assert.EqualValues(t, 1, compiles.Load())
}
