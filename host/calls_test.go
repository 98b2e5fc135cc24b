package host_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host/wasmtest"
)

var (
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	secrets    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

func cmReq(ns, name string) *abi.Request {
	return &abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: ns, Name: name}
}

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}}, Data: data}
}

func TestReconcileSucceedsWithGet(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(map[bool]string{false: "live", true: "cached"}[cached], func(t *testing.T) {
			opts := wasmtest.Options{Objects: []runtime.Object{configMap("ns", "a", map[string]string{"k": "value-a"})}}
			if cached {
				opts.Cached = []schema.GroupVersionResource{configMaps}
			}
			h := run(t, script{Steps: []step{
				{Op: abi.OpGet, Req: cmReq("$ns", "$name"), BodyContains: "value-a"},
				{Op: abi.OpGet, Req: cmReq("$ns", "missing"), Want: 404, WantReason: "NotFound"},
			}}, opts)
			res, err := h.Reconcile(t.Context(), "ns", "a")
			require.NoError(t, err)
			assert.True(t, res.IsZero())
		})
	}
}
