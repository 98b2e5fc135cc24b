package host_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

// assertHostStillWorks starts a well-behaved module from the same compiled code
// in the same runtime and checks that it reconciles.
func assertHostStillWorks(t *testing.T, h *wasmtest.Harness) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	good, err := h.Runtime.NewModule(ctx, h.Compiled, host.ModuleOptions{
		Name: "good", Client: h.Client, Primary: configMaps, PrimaryKind: "ConfigMap",
		Config: []byte(`{"steps":[{"op":10,"req":{}}]}`),
	})
	require.NoError(t, err)
	defer good.Close(ctx)
	_, err = good.Reconcile(t.Context(), reconcile.Request{})
	require.NoError(t, err, "a good module must still reconcile")
}

func TestHostileGuestsFailOnlyTheirReconcile(t *testing.T) {
	cases := []struct {
		name    string
		script  script
		module  host.ModuleOptions
		reason  string
		message string
	}{
		{name: "infinite loop", script: script{Steps: []step{{Loop: true}}},
			module: host.ModuleOptions{ReconcileTimeout: 300 * time.Millisecond}, reason: host.TrapTimeout, message: "deadline exceeded"},
		{name: "memory growth past the cap", script: script{Steps: []step{{Grow: true}}},
			module: host.ModuleOptions{MemoryLimitBytes: 64 << 20}, reason: host.TrapOOM, message: "out of memory"},
		{name: "Go panic", script: script{Steps: []step{{Panic: "boom"}}}, reason: host.TrapPanic, message: "(panic: boom"},
		{name: "proc_exit", script: script{Steps: []step{{Exit: 3}}}, reason: host.TrapExit, message: "exit_code(3)"},
		{name: "malformed reconcile response", script: script{Garbage: true}, reason: host.TrapProtocol, message: "truncated field header"},
		{name: "response outside memory", script: script{ReturnPacked: abi.Pack(0xffffff00, 4096)}, reason: host.TrapProtocol, message: "outside memory"},
		{name: "response larger than the maximum", script: script{ReturnPacked: abi.Pack(16, 0xffffffff)}, reason: host.TrapProtocol, message: "exceeds the maximum message size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := run(t, c.script, wasmtest.Options{Module: c.module})
			_, err := h.Reconcile(t.Context(), "ns", "obj")
			require.Error(t, err)
			assert.Contains(t, err.Error(), `module "test": reconcile ns/obj: `+c.reason)
			assert.Contains(t, err.Error(), c.message)
			assert.False(t, reconcile.IsTerminal(err), "backoff must apply")
			assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", c.reason)))
			assert.Equal(t, 0, h.Module.Instances(), "the instance is discarded")
			assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.Instances.WithLabelValues("test")))
			assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("test")))
			events := h.Events()
			require.Len(t, events, 1)
			assert.Contains(t, events[0], "Warning ReconcileTrapped module test: reconcile failed ("+c.reason+")")
			assertHostStillWorks(t, h)
		})
	}
}

func TestUnreachableTrap(t *testing.T) {
	wasm := wasmModule(true, nil, abiFuncs(abi.MarkerV1, unreachable))
	h := wasmtest.New(t, wasm, wasmtest.Options{})
	_, err := h.Reconcile(t.Context(), "ns", "obj")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "trap: wasm error: unreachable")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapWasm)))
	assert.Equal(t, 0, h.Module.Instances())
	assertHostStillWorksHandWritten(t, h.Runtime)
}

// assertHostStillWorksHandWritten runs a trivial hand-written module whose
// reconcile returns 0 ("success").
func assertHostStillWorksHandWritten(t *testing.T, rt *host.Runtime) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	c, err := rt.Compile(ctx, "ok", wasmModule(true, nil, abiFuncs(abi.MarkerV1, i64Const0)))
	require.NoError(t, err)
	defer c.Close(ctx)
	m, err := rt.NewModule(ctx, c, host.ModuleOptions{Name: "ok", Client: fakeClient(), Primary: configMaps, PrimaryKind: "ConfigMap"})
	require.NoError(t, err)
	defer m.Close(ctx)
	res, err := m.Reconcile(t.Context(), reconcile.Request{})
	require.NoError(t, err)
	assert.True(t, res.IsZero())
}

func TestBadPointersAndEnvelopesGetErrorStatus(t *testing.T) {
	h := run(t, script{Steps: []step{
		{Raw: &rawCall{Op: uint32(abi.OpGet), Ptr: 0xffffff00, Len: 1000}, Want: 400, WantReason: "BadRequest"},
		{Raw: &rawCall{Op: uint32(abi.OpGet), Ptr: 0, Len: 0xffffffff}, Want: 413, WantReason: "RequestEntityTooLarge"},
		{Raw: &rawCall{Op: 99}, Want: 400, WantReason: "BadRequest"},
		{Raw: &rawCall{Op: uint32(abi.OpGet), Ptr: 8, Len: 3}, Want: 400}, // a truncated field header
		{LogRaw: &rawCall{Ptr: 0xfffffff0, Len: 64}},
		{LogRaw: &rawCall{Ptr: 0, Len: 0xffffffff}},
		{Op: abi.OpConfig, Req: &abi.Request{}},
	}}, wasmtest.Options{})
	_, err := h.Reconcile(t.Context(), "ns", "obj")
	require.NoError(t, err)
	assert.Equal(t, 2.0, testutil.ToFloat64(h.Metrics.HostCalls.WithLabelValues("test", "get", "400")))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.HostCalls.WithLabelValues("test", "unknown", "400")))
	assert.Equal(t, 1, h.Module.Instances(), "status errors keep the instance")
}

func TestPermissionsDenyWithForbidden(t *testing.T) {
	objs := []runtime.Object{configMap("ns", "a", nil)}
	onlyConfigMaps := host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}, Namespaces: []string{"ns"}}}
	secret := &abi.Request{Version: "v1", Resource: "secrets", Kind: "Secret", Namespace: "ns", ContentType: abi.ContentTypeJSON,
		Body: []byte(`{"metadata":{"name":"s"},"stringData":{"k":"v"}}`)}
	cases := []struct {
		name  string
		perms host.Permissions
		steps []step
	}{
		{"resource not granted", onlyConfigMaps, []step{
			{Op: abi.OpGet, Req: &abi.Request{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment", Namespace: "ns", Name: "d"}, Want: 403, WantReason: "Forbidden"},
		}},
		{"verb not granted", onlyConfigMaps, []step{{Op: abi.OpDelete, Req: cmReq("ns", "a"), Want: 403}}},
		{"namespace not granted", onlyConfigMaps, []step{{Op: abi.OpGet, Req: cmReq("other", "a"), Want: 403}}},
		{"secret write under a wildcard grant", nil, []step{{Op: abi.OpCreate, Req: secret, Want: 403, WantReason: "Forbidden"}}},
		{"secret write granted explicitly", host.Permissions{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}}},
			[]step{{Op: abi.OpCreate, Req: secret, Want: 201}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := run(t, script{Steps: c.steps}, wasmtest.Options{Objects: objs, Module: host.ModuleOptions{Permissions: c.perms}})
			_, err := h.Reconcile(t.Context(), "ns", "a")
			require.NoError(t, err)
			op := c.steps[0].Op.String()
			code := map[bool]string{true: "403", false: "201"}[c.steps[0].Want == 403]
			assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.HostCalls.WithLabelValues("test", op, code)))
			_, err = h.Get(t.Context(), secrets, "ns", "s")
			assert.Equal(t, c.steps[0].Want == 201, err == nil, "the secret exists only when the write was allowed")
		})
	}
}

func TestCompileRefusesBadModules(t *testing.T) {
	ctx := t.Context()
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{})
	require.NoError(t, err)
	defer rt.Close(ctx)
	cases := []struct {
		name string
		wasm []byte
		want []string
	}{
		{"missing exports", wasmModule(true, nil, []wfunc{{name: abi.MarkerV1}}),
			[]string{"missing export wre_alloc (i32)->(i32)", "missing export wre_free", "missing export wre_reconcile (i32,i32)->(i64)"}},
		{"unsupported ABI version", wasmModule(true, nil, abiFuncs("wre_abi_v7", i64Const0)),
			[]string{"unsupported ABI: module exports [wre_abi_v7], host supports [wre_abi_v1 wre_abi_v2]"}},
		{"no ABI marker", wasmModule(true, nil, abiFuncs("something_else", i64Const0)),
			[]string{"unsupported ABI: module exports no wre_abi_v* marker"}},
		{"two ABI markers", wasmModule(true, nil, append(abiFuncs(abi.MarkerV1, i64Const0), wfunc{name: "wre_abi_v2"})),
			[]string{"module exports [wre_abi_v1 wre_abi_v2]"}},
		{"no memory", wasmModule(false, nil, abiFuncs(abi.MarkerV1, i64Const0)), []string{"missing export memory"}},
		{"wrong signature", wasmModule(true, nil, []wfunc{{name: abi.MarkerV1},
			{name: "wre_alloc", params: []byte{tI32}, results: []byte{tI32}, body: i32Const1024},
			{name: "wre_free", params: []byte{tI32}},
			{name: "wre_reconcile", params: []byte{tI32}, results: []byte{tI64}, body: i64Const0}}),
			[]string{"export wre_reconcile has signature (i32)->(i64), want (i32,i32)->(i64)"}},
		{"foreign import", wasmModule(true, []wimport{{module: "env", name: "socket"}}, abiFuncs(abi.MarkerV1, i64Const0)),
			[]string{"unsupported import env.socket"}},
		{"unknown wre import", wasmModule(true, []wimport{{module: "wre", name: "exec"}}, abiFuncs(abi.MarkerV1, i64Const0)),
			[]string{"unsupported import wre.exec"}},
		{"wrong import signature", wasmModule(true, []wimport{{module: "wre", name: "log", params: []byte{tI32}}}, abiFuncs(abi.MarkerV1, i64Const0)),
			[]string{"import wre.log has signature (i32)->(), want (i32,i32,i32)->()"}},
		{"not wasm", []byte("hello"), []string{`compile module "bad":`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := rt.Compile(ctx, "bad", c.wasm)
			require.Error(t, err)
			assert.Contains(t, err.Error(), `compile module "bad": `)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	assertHostStillWorksHandWritten(t, rt)
}

func TestConcurrentReconcilesShareThePool(t *testing.T) {
	h := run(t, script{Steps: []step{{Op: abi.OpGet, Req: cmReq("$ns", "$name")}}},
		wasmtest.Options{Objects: []runtime.Object{configMap("ns", "a", nil)}, Module: host.ModuleOptions{Concurrency: 2}})
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { _, errs[i] = h.Reconcile(t.Context(), "ns", "a") })
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	assert.LessOrEqual(t, h.Module.Instances(), 2)
	assert.GreaterOrEqual(t, h.Module.Instances(), 1)
}

// TestSDKRecoveredPanicIsATrap runs a guest built with the Go SDK whose
// reconcile panics: the SDK recovers and reports the panic, and the host
// treats it like a trap with reason panic.
func TestSDKRecoveredPanicIsATrap(t *testing.T) {
	h := wasmtest.New(t, wasmtest.Build(t, "testdata/guests/sdkpanic"), wasmtest.Options{})
	_, err := h.Reconcile(t.Context(), "ns", "ok")
	require.NoError(t, err)
	require.Equal(t, 1, h.Module.Instances())

	_, err = h.Reconcile(t.Context(), "ns", "panic")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `module "test": reconcile ns/panic: panic (panic: boom in ns/panic): recovered by the guest: panic: boom in ns/panic`)
	assert.Contains(t, err.Error(), "goroutine ", "the stack is kept")
	assert.False(t, reconcile.IsTerminal(err), "backoff must apply")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapPanic)))
	assert.Equal(t, 0, h.Module.Instances(), "the instance is discarded")
	assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.Instances.WithLabelValues("test")))
	events := h.Events()
	require.Len(t, events, 1)
	assert.Contains(t, events[0], "Warning ReconcileTrapped module test: reconcile failed (panic), instance discarded: ")
	assert.Contains(t, events[0], "(panic: boom in ns/panic)")
	assert.NotContains(t, events[0], "goroutine ", "the event carries the first line only")

	_, err = h.Reconcile(t.Context(), "ns", "ok")
	require.NoError(t, err, "a new instance serves the next reconcile")
}

// TestEarlierPanicLineDoesNotLabelLaterTrap: a "panic: " line a guest printed
// in an earlier, successful reconcile of the same instance does not make a
// later trap a panic.
func TestEarlierPanicLineDoesNotLabelLaterTrap(t *testing.T) {
	h := run(t, script{Steps: []step{
		{Print: "panic: not really", OnlyFor: "printer"},
		{Exit: 3, OnlyFor: "exiter"},
	}}, wasmtest.Options{})
	_, err := h.Reconcile(t.Context(), "ns", "printer")
	require.NoError(t, err)
	require.Equal(t, 1, h.Module.Instances())
	_, err = h.Reconcile(t.Context(), "ns", "exiter")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `reconcile ns/exiter: exit: `)
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapExit)))
	assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapPanic)))
}

// hungClient answers every get by waiting for its context (or for release,
// so that a failing test leaks nothing), as a request to a hung API server would.
type hungClient struct {
	dynamic.Interface
	release chan struct{}
}

func (c hungClient) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	return hungResource{c.Interface.Resource(gvr), c.release}
}

type hungResource struct {
	dynamic.NamespaceableResourceInterface
	release chan struct{}
}

func (r hungResource) Namespace(string) dynamic.ResourceInterface { return r }

func (r hungResource) Get(ctx context.Context, _ string, _ metav1.GetOptions, _ ...string) (*unstructured.Unstructured, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.release:
		return nil, errors.New("released")
	}
}

// TestTrapEventDoesNotWaitForAHungAPIServer: the read that gives a trap event
// its object UID has a deadline of its own, so a hung API server does not
// hold up the worker; the event is recorded without the UID.
func TestTrapEventDoesNotWaitForAHungAPIServer(t *testing.T) {
	ctx := context.WithoutCancel(t.Context())
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{})
	require.NoError(t, err)
	defer rt.Close(ctx)
	c, err := rt.Compile(ctx, "trap", wasmModule(true, nil, abiFuncs(abi.MarkerV1, unreachable)))
	require.NoError(t, err)
	defer c.Close(ctx)
	client := hungClient{Interface: fakeClient(), release: make(chan struct{})}
	defer close(client.release)
	recorder := record.NewFakeRecorder(10)
	m, err := rt.NewModule(ctx, c, host.ModuleOptions{Name: "trap", Client: client, Recorder: recorder, Primary: configMaps, PrimaryKind: "ConfigMap"})
	require.NoError(t, err)
	defer m.Close(ctx)
	host.SetTrapEventTimeout(m, 100*time.Millisecond)

	done := make(chan error, 1)
	go func() {
		_, err := m.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "obj"}})
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "unreachable")
	case <-time.After(10 * time.Second):
		t.Fatal("the reconcile waits for the hung API server")
	}
	require.Len(t, recorder.Events, 1)
	assert.Contains(t, <-recorder.Events, "Warning ReconcileTrapped module trap: reconcile failed (trap)")
}
