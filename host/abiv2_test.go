package host_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

func leanGuest(t testing.TB) []byte { return wasmtest.Build(t, "testdata/guests/lean") }

func typedConfigMap(name string, labels, data map[string]string, finalizers ...string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: labels, Finalizers: finalizers},
		Data:       data,
	}
}

// runLean starts the lean test guest on ConfigMaps, cached like in the engine.
func runLean(t *testing.T, logs *logSink, objects ...runtime.Object) *wasmtest.Harness {
	t.Helper()
	opts := wasmtest.Options{
		Objects: objects,
		Cached:  []schema.GroupVersionResource{configMaps},
		Module: host.ModuleOptions{
			Permissions: host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "patch"}}},
		},
	}
	if logs != nil {
		opts.Runtime.Logger = logs.logger()
	}
	return wasmtest.New(t, leanGuest(t), opts)
}

func TestV2ReconcileCarriesTheProjectedObject(t *testing.T) {
	logs := &logSink{}
	h := runLean(t, logs,
		typedConfigMap("list-a", map[string]string{"app": "web"}, nil, "f1", "f2"),
		typedConfigMap("b", map[string]string{"app": "web"}, nil),
		typedConfigMap("c", map[string]string{"app": "db"}, nil),
	)
	_, err := h.Reconcile(t.Context(), "ns", "list-a")
	require.NoError(t, err)
	assert.NotEmpty(t, logs.find("listed count=2 finalizers=2"), "labels, finalizers and a label-selected list arrive in the projection")

	res, err := h.Reconcile(t.Context(), "ns", "other")
	require.NoError(t, err, "a missing primary object is not an error")
	assert.Equal(t, reconcile.Result{}, res)
	assert.NotEmpty(t, logs.find("gone object=ns/other"), "a deleted object arrives as not found")
	assert.Empty(t, h.Writes())
	assert.Equal(t, 0.0, testutil.ToFloat64(h.Metrics.HostCalls.WithLabelValues("test", "get", "200")),
		"the primary object needs no get")
}

func TestV2ApplyAndGet(t *testing.T) {
	logs := &logSink{}
	h := runLean(t, logs, typedConfigMap("copy-src", map[string]string{"app": "web"}, map[string]string{"k": "v", "a": "b"}))
	_, err := h.Reconcile(t.Context(), "ns", "copy-src")
	require.NoError(t, err)
	got, err := h.Get(t.Context(), configMaps, "ns", "copy-src-copy")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"k": "v", "a": "b"}, got.Object["data"])
	assert.Equal(t, map[string]string{"app": "web", "copy-of": "copy-src"}, got.GetLabels())
	writes := h.Writes()
	require.Len(t, writes, 1)
	assert.Equal(t, "patch", writes[0].Verb)
	assert.JSONEq(t, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"copy-src-copy","namespace":"ns",
		"labels":{"app":"web","copy-of":"copy-src"}},"data":{"a":"b","k":"v"},"immutable":false}`, string(writes[0].Body),
		"an apply sends the declared fields, never server-owned metadata")
	assert.NotEmpty(t, logs.find("copied to=copy-src-copy"))
}

func TestV2Results(t *testing.T) {
	logs := &logSink{}
	h := runLean(t, logs,
		typedConfigMap("requeue-a", nil, nil), typedConfigMap("terminal-a", nil, nil), typedConfigMap("panic-a", nil, nil), typedConfigMap("missing-a", nil, nil))
	res, err := h.Reconcile(t.Context(), "ns", "requeue-a")
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, res.RequeueAfter)

	_, err = h.Reconcile(t.Context(), "ns", "terminal-a")
	require.Error(t, err)
	assert.True(t, reconcile.IsTerminal(err))
	assert.Contains(t, err.Error(), "cannot fix terminal-a")

	_, err = h.Reconcile(t.Context(), "ns", "missing-a")
	require.NoError(t, err)
	assert.NotEmpty(t, logs.find("missing notFound=true"), "a 404 maps to IsNotFound")

	_, err = h.Reconcile(t.Context(), "ns", "panic-a")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "panic")
	assert.Contains(t, err.Error(), "boom panic-a")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapPanic)))
	assert.Equal(t, 0, h.Module.Instances(), "a recovered panic discards the instance")

	_, err = h.Reconcile(t.Context(), "ns", "requeue-a")
	require.NoError(t, err, "a new instance serves the next reconcile")
}

func TestV2PermissionsApply(t *testing.T) {
	h := wasmtest.New(t, leanGuest(t), wasmtest.Options{
		Objects: []runtime.Object{typedConfigMap("copy-src", nil, map[string]string{"k": "v"})},
		Cached:  []schema.GroupVersionResource{configMaps},
		Module: host.ModuleOptions{
			Permissions: host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
		},
	})
	_, err := h.Reconcile(t.Context(), "ns", "copy-src")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `not granted "patch"`)
	assert.Empty(t, h.Writes())
}

// v2Funcs are the exports of a hand-written v2 guest whose buffer export
// runs bufferBody and whose reconcile runs reconcileBody.
func v2Funcs(bufferBody, reconcileBody []byte) []wfunc {
	return []wfunc{
		{name: abi.MarkerV2},
		{name: abi.ExportBuffer, params: []byte{tI32}, results: []byte{tI32}, body: bufferBody},
		{name: abi.ExportReconcile, params: []byte{tI32, tI32}, results: []byte{tI64}, body: reconcileBody},
	}
}

func i64Const(v int64) []byte {
	out := []byte{0x42}
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func TestV2HostileGuests(t *testing.T) {
	i32Const0 := []byte{0x41, 0x00}
	for _, c := range []struct {
		name                  string
		pages                 byte
		buffer, reconcileBody []byte
		message               string
	}{
		{"buffer export returns 0", 2, i32Const0, i64Const0, "wre_buffer(65536) returned 0x0"},
		{"buffer outside memory", 1, i32Const1024, i64Const0, "wre_buffer(65536) returned 0x400, outside memory"},
		{"result outside memory", 2, i32Const1024, i64Const(int64(abi.Pack(0xffff0000, 64))), "reconcile response (0xffff0000, 64) is outside memory"},
		{"result larger than the maximum", 2, i32Const1024, i64Const(int64(abi.Pack(1024, 0xffffffff))), "exceeds the maximum message size"},
		// The request record at the buffer's start has 5 slots: 4 bytes of it
		// hold the count and not the table.
		{"malformed result", 2, i32Const1024, i64Const(int64(abi.Pack(1024, 4))), "reconcile response: malformed flat record: 5 slots do not fit in 4 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := wasmtest.New(t, wasmModulePages(c.pages, nil, v2Funcs(c.buffer, c.reconcileBody)), wasmtest.Options{})
			_, err := h.Reconcile(t.Context(), "ns", "obj")
			require.Error(t, err)
			assert.Contains(t, err.Error(), host.TrapProtocol)
			assert.Contains(t, err.Error(), c.message)
			assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapProtocol)))
			assert.Equal(t, 0, h.Module.Instances(), "an instance whose memory cannot be trusted is discarded")
			assertHostStillWorksHandWritten(t, h.Runtime)
		})
	}
}
