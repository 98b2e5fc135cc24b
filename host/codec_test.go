package host

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// TestCodecRefusesKindsWithoutProtobuf walks every kind the client-go scheme
// knows, internal versions included: the codec answers 415 for the ones
// without generated protobuf code instead of panicking.
func TestCodecRefusesKindsWithoutProtobuf(t *testing.T) {
	internal := 0
	for gvk := range defaultCodec.scheme.AllKnownTypes() {
		obj, err := defaultCodec.scheme.New(gvk)
		require.NoError(t, err)
		_, hasProto := obj.(protoMessage)
		if gvk.Version == runtime.APIVersionInternal {
			internal++
			assert.False(t, defaultCodec.builtin(gvk), "%s is not a wire type", gvk)
		}
		_, err = defaultCodec.decode(abi.ContentTypeProtobuf, nil, gvk)
		if !hasProto || gvk.Version == runtime.APIVersionInternal {
			assertStatus(t, err, http.StatusUnsupportedMediaType, gvk.String())
		}
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetGroupVersionKind(gvk)
		_, _, err = defaultCodec.encode(u, gvk, abi.ContentTypeProtobuf)
		if !hasProto || gvk.Version == runtime.APIVersionInternal {
			assertStatus(t, err, http.StatusUnsupportedMediaType, gvk.String())
		}
	}
	require.Positive(t, internal, "the scheme has internal kinds, the case this test is about")
}

// TestCreateInternalKindAnswers415 is the call that used to panic the host: a
// create of an internal kind with a protobuf body, under a matching grant.
func TestCreateInternalKindAnswers415(t *testing.T) {
	m := fuzzModule(t)
	st := &callState{m: m, reconciling: true, ns: "ns", name: "a"}
	for _, op := range []abi.Op{abi.OpCreate, abi.OpUpdate, abi.OpPatch} {
		req := &abi.Request{Group: "apps", Version: runtime.APIVersionInternal, Resource: "watchevents", Kind: "WatchEvent",
			Namespace: "ns", Name: "w", ContentType: abi.ContentTypeProtobuf, PatchType: abi.PatchApply, Body: []byte{0x0a, 0x01, 'x'}}
		resp := m.handle(t.Context(), st, op, req.Marshal())
		assert.EqualValues(t, http.StatusUnsupportedMediaType, resp.Code, op.String())
		assert.Equal(t, "UnsupportedMediaType", resp.Reason, op.String())
	}
}

func assertStatus(t *testing.T, err error, code int32, msg string) {
	t.Helper()
	if assert.Error(t, err, msg) {
		assert.Equal(t, code, statusOf(err).Code, msg)
	}
}
