package host_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
)

var (
	importCall = wimport{module: "wre", name: "call", params: []byte{tI32, tI32, tI32}, results: []byte{tI64}}
	importPing = wimport{module: "wre", name: "ping", results: []byte{tI32}}
)

// testABIModule is a module of host.TestABIMarker whose reconcile returns
// ping() + call(0, 0, 0), 1042 when both reach the test version's functions.
func testABIModule() []byte {
	body := []byte{
		0x10, 0x01, // call ping
		0xad,                                           // i64.extend_i32_u
		0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0x10, 0x00, // call wre.call(0, 0, 0)
		0x7c, // i64.add
	}
	return wasmModule(true, []wimport{importCall, importPing}, []wfunc{
		{name: host.TestABIMarker},
		{name: "wre_alloc", params: []byte{tI32}, results: []byte{tI32}, body: i32Const1024},
		{name: "wre_free", params: []byte{tI32}},
		{name: "wre_reconcile", results: []byte{tI64}, body: body},
	})
}

// v1ConfigModule is a v1 module whose reconcile calls wre.call(config) and
// succeeds.
func v1ConfigModule() []byte {
	body := []byte{
		0x41, 0x0a, 0x41, 0x00, 0x41, 0x00, 0x10, 0x00, // call wre.call(10 config, 0, 0)
		0x1a,       // drop
		0x42, 0x00, // i64.const 0
	}
	return wasmModule(true, []wimport{importCall}, abiFuncs(abi.MarkerV1, body))
}

func TestRuntimeRunsSeveralABIVersionsSideBySide(t *testing.T) {
	ctx := context.WithoutCancel(t.Context())
	metrics, err := host.NewMetrics(nil)
	require.NoError(t, err)
	rt, err := host.NewRuntimeWithTestABI(ctx, host.RuntimeOptions{Metrics: metrics})
	require.NoError(t, err)
	defer rt.Close(ctx)

	start := func(name string, wasm []byte) *host.Module {
		c, err := rt.Compile(ctx, name, wasm)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(ctx) })
		m, err := rt.NewModule(ctx, c, host.ModuleOptions{Name: name, Client: fakeClient(), Primary: configMaps, PrimaryKind: "ConfigMap"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close(ctx) })
		return m
	}
	v1 := start("v1", v1ConfigModule())
	test := start("test", testABIModule())
	calls := host.TestABICalls.Load()
	for range 2 {
		res, err := v1.Reconcile(t.Context(), reconcile.Request{})
		require.NoError(t, err)
		assert.True(t, res.IsZero())
		res, err = test.Reconcile(t.Context(), reconcile.Request{})
		require.NoError(t, err)
		assert.Equal(t, 1042*time.Nanosecond, res.RequeueAfter, "the test version's reconcile and both of its host functions ran")
	}
	assert.Equal(t, 2.0, testutil.ToFloat64(metrics.HostCalls.WithLabelValues("v1", "config", "200")), "v1's wre.call is v1's")
	assert.EqualValues(t, 2, host.TestABICalls.Load()-calls, "the test version's wre.call is its own")

	cases := []struct {
		name string
		wasm []byte
		want string
	}{
		{"unknown marker", wasmModule(true, nil, abiFuncs("wre_abi_v7", i64Const0)),
			"unsupported ABI: module exports [wre_abi_v7], host supports [wre_abi_v1 wre_abi_v2 " + host.TestABIMarker + "] (exactly one is required)"},
		{"v1 module importing a test version function", wasmModule(true, []wimport{importPing}, abiFuncs(abi.MarkerV1, i64Const0)),
			"unsupported import wre.ping"},
		{"test version module with v1's reconcile", wasmModule(true, nil, abiFuncs(host.TestABIMarker, i64Const0)),
			"export wre_reconcile has signature (i32,i32)->(i64), want ()->(i64)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := rt.Compile(ctx, "bad", c.wasm)
			assert.ErrorContains(t, err, c.want)
		})
	}

	plain, err := host.NewRuntime(ctx, host.RuntimeOptions{})
	require.NoError(t, err)
	defer plain.Close(ctx)
	_, err = plain.Compile(ctx, "test", testABIModule())
	assert.ErrorContains(t, err, "unsupported ABI: module exports ["+host.TestABIMarker+"], host supports [wre_abi_v1 wre_abi_v2]")
}
