package host

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// fuzzModule is a Module with a fake client holding one ConfigMap, enough to
// run host calls without a wasm instance.
func fuzzModule(t testing.TB) *Module {
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetNamespace("ns")
	cm.SetName("a")
	opts := ModuleOptions{
		Name: "fuzz", Client: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), cm),
		Primary: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, PrimaryKind: "ConfigMap",
		Permissions: Permissions{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
	}
	if err := opts.defaults(); err != nil {
		t.Fatal(err)
	}
	metrics, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Module{rt: &Runtime{opts: RuntimeOptions{MaxMessageSize: DefaultMaxMessageSize, Metrics: metrics}}, opts: opts}
}

// FuzzHandle runs arbitrary request bytes through every op: the host must
// answer with a status, never panic, and never report success for a request
// it could not decode.
func FuzzHandle(f *testing.F) {
	f.Add(uint32(abi.OpGet), (&abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "ns", Name: "a"}).Marshal())
	f.Add(uint32(abi.OpCreate), (&abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "ns",
		ContentType: abi.ContentTypeJSON, Body: []byte(`{"metadata":{"name":"b"}}`)}).Marshal())
	f.Add(uint32(abi.OpCreate), (&abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "ns",
		ContentType: abi.ContentTypeProtobuf, Body: []byte{0x0a, 0x03, 0x0a, 0x01, 'c'}}).Marshal())
	f.Add(uint32(abi.OpPatch), (&abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "ns", Name: "a",
		PatchType: abi.PatchMerge, Body: []byte(`{"data":{"k":"v"}}`)}).Marshal())
	f.Add(uint32(abi.OpEvent), (&abi.Request{EventType: "Normal", EventReason: "R"}).Marshal())
	f.Add(uint32(abi.OpList), []byte{1, 0, 200, 0, 0, 0})
	f.Add(uint32(abi.OpCreate), (&abi.Request{Group: "apps", Version: "__internal", Resource: "watchevents", Kind: "WatchEvent", Namespace: "ns",
		ContentType: abi.ContentTypeProtobuf, Body: []byte{0x0a, 0x01, 'x'}}).Marshal())
	m := fuzzModule(f)
	st := &callState{m: m, reconciling: true, ns: "ns", name: "a"}
	f.Fuzz(func(t *testing.T, op uint32, b []byte) {
		if abi.Op(op).String() == "unknown" {
			return // answered before decoding; see serve
		}
		defer func() {
			// The fake dynamic client panics when listing a resource it was not
			// told the list kind of; a real client answers 404.
			if r := recover(); r != nil && !strings.HasPrefix(fmt.Sprint(r), "coding error: you must register resource to list kind") {
				panic(r)
			}
		}()
		resp := m.handle(context.Background(), st, abi.Op(op), b)
		if resp.Code == 0 {
			t.Fatalf("no status code for op %d", op)
		}
		var req abi.Request
		if req.Unmarshal(b) != nil && resp.OK() {
			t.Fatalf("undecodable request answered with %d", resp.Code)
		}
	})
}

// FuzzDecodeBody checks that object bodies from guests never panic the codec,
// whatever group/version/kind the request names (internal versions such as
// "apps/__internal" WatchEvent included, which the scheme recognizes but which
// have no protobuf code), and that what decodes names the requested kind.
func FuzzDecodeBody(f *testing.F) {
	f.Add("", "v1", "ConfigMap", true, []byte{0x0a, 0x03, 0x0a, 0x01, 'c'})
	f.Add("", "v1", "ConfigMap", false, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`))
	f.Add("", "v1", "ConfigMap", false, []byte(`null`))
	f.Add("apps", "v1", "Deployment", true, []byte{0x0a, 0x03, 0x0a, 0x01, 'd'})
	f.Add("apps", "__internal", "WatchEvent", true, []byte{0x0a, 0x01, 'x'})
	f.Add("", "__internal", "WatchEvent", false, []byte(`{"type":"ADDED"}`))
	f.Add("", "v1", "WatchEvent", true, []byte{0x0a, 0x01, 'x'})
	f.Add("example.com", "v1", "Widget", false, []byte(`{"spec":{}}`))
	f.Fuzz(func(t *testing.T, group, version, kind string, proto bool, b []byte) {
		gvk := schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
		ct := abi.ContentTypeJSON
		if proto {
			ct = abi.ContentTypeProtobuf
		}
		u, err := defaultCodec.decode(ct, b, gvk)
		if err != nil {
			return
		}
		if u.GroupVersionKind() != gvk {
			t.Fatalf("decoded %s, want %s", u.GroupVersionKind(), gvk)
		}
		if _, _, err := defaultCodec.encode(u, gvk, ""); err != nil && proto {
			t.Fatalf("re-encode: %v", err)
		}
	})
}
