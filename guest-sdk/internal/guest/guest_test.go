package guest

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

type logRecorder struct{ lines []string }

func (r *logRecorder) Call(abi.Op, []byte) ([]byte, error) { return nil, errors.New("unused") }

func (r *logRecorder) Log(level abi.Level, msg []byte) {
	r.lines = append(r.lines, levelName[level]+" "+string(msg))
}

var levelName = map[abi.Level]string{abi.LevelError: "E", abi.LevelInfo: "I", abi.LevelDebug: "D", abi.LevelTrace: "T"}

func TestLogger(t *testing.T) {
	r := &logRecorder{}
	log := NewLogger(r)
	log.Info("plain")
	log.WithName("a").WithName("b").WithValues("k", "v w").V(1).Info("named", "n", 3)
	log.V(5).Info("deep", "odd")
	log.Error(errors.New("bad thing"), "failed", "empty", "", "eq", "a=b")
	want := []string{
		"I plain",
		`D a/b: named k="v w" n=3`,
		"T deep odd=(MISSING)",
		`E failed error="bad thing" empty="" eq="a=b"`,
	}
	if strings.Join(r.lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(r.lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestCodecRoundTrip(t *testing.T) {
	gvk := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	ugvk := schema.GroupVersionKind{Group: "x.io", Version: "v1", Kind: "Thing"}
	thing := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"a": "b"}}}
	thing.SetName("t")
	tests := []struct {
		name   string
		obj    runtime.Object
		gvk    schema.GroupVersionKind
		ct     string
		target func() runtime.Object
	}{
		{"built-in as protobuf", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Data: map[string]string{"k": "v"}}, gvk,
			abi.ContentTypeProtobuf, func() runtime.Object { return &corev1.ConfigMap{Data: map[string]string{"stale": "x"}} }},
		{"unstructured as JSON", thing, ugvk, abi.ContentTypeJSON,
			func() runtime.Object { return &unstructured.Unstructured{Object: map[string]any{"stale": "x"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body, err := Encode(tt.obj, tt.gvk)
			if err != nil || ct != tt.ct {
				t.Fatalf("encode: %s %v", ct, err)
			}
			got := tt.target()
			if err := Decode(ct, body, got, tt.gvk); err != nil {
				t.Fatal(err)
			}
			tt.obj.GetObjectKind().SetGroupVersionKind(tt.gvk)
			if !equalJSON(t, got, tt.obj) {
				t.Fatalf("decoded %#v, want %#v (old content must be gone)", got, tt.obj)
			}
		})
	}
}

func equalJSON(t *testing.T, a, b runtime.Object) bool {
	t.Helper()
	ma, err := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err != nil {
		t.Fatal(err)
	}
	return toString(ma) == toString(mb)
}

func toString(m map[string]any) string {
	b, _ := (&unstructured.Unstructured{Object: m}).MarshalJSON()
	return string(b)
}

func TestDecodeErrors(t *testing.T) {
	gvk := schema.GroupVersionKind{Version: "v1", Kind: "Thing"}
	tests := []struct {
		name string
		ct   string
		body []byte
		obj  runtime.Object
	}{
		{"unknown content type", "application/yaml", nil, &corev1.ConfigMap{}},
		{"protobuf for a JSON-only type", abi.ContentTypeProtobuf, nil, &unstructured.Unstructured{}},
		{"bad protobuf", abi.ContentTypeProtobuf, []byte{0xff, 0xff}, &corev1.ConfigMap{}},
		{"bad JSON", abi.ContentTypeJSON, []byte("{"), &corev1.ConfigMap{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Decode(tt.ct, tt.body, tt.obj, gvk); err == nil || !strings.Contains(err.Error(), "decode Thing") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestStatusError(t *testing.T) {
	err := StatusError(abi.Status{Code: 404, Reason: "NotFound", Message: "gone", Group: "apps", Kind: "deployments", Name: "d"})
	if err.ErrStatus.Details.Name != "d" || err.Error() != "gone" || err.ErrStatus.Code != 404 {
		t.Fatalf("%+v", err.ErrStatus)
	}
}
