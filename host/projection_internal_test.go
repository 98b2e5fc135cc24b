package host

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

func declareReq(group, version, resource, kind string, fields ...string) *abi.Request {
	return &abi.Request{Group: group, Version: version, Resource: resource, Kind: kind, Fields: fields}
}

func TestParseProjectionRefusesBadDeclarations(t *testing.T) {
	for _, c := range []struct {
		name string
		req  *abi.Request
		want string
	}{
		{"no resource", declareReq("", "v1", "", "ConfigMap", "data:map"), "version, resource and kind are required"},
		{"no fields", declareReq("", "v1", "configmaps", "ConfigMap"), "no fields"},
		{"too many fields", declareReq("", "v1", "configmaps", "ConfigMap", manyFields(maxProjectionFields+1)...), "more than 256 fields"},
		{"too many nested fields", declareReq("demo.wre.dev", "v1", "widgets", "Widget", "spec.a:records{"+strings.Join(manyFields(maxProjectionFields), ",")+"}"), "more than 256 fields"},
		{"records without fields", declareReq("demo.wre.dev", "v1", "widgets", "Widget", "spec.items:records{}"), "at least one field"},
		{"records unbalanced", declareReq("demo.wre.dev", "v1", "widgets", "Widget", "spec.items:records{a:records{b:int}"), "balanced braces"},
		{"records bare", declareReq("demo.wre.dev", "v1", "widgets", "Widget", "spec.items:records"), "want path:kind"},
		{"records too deep", declareReq("demo.wre.dev", "v1", "widgets", "Widget", "a:records{b:records{c:records{d:records{e:int}}}}"), "nested deeper than 4"},
		{"bad element field", declareReq("demo.wre.dev", "v1", "widgets", "Widget", "spec.items:records{name:float}"), `field spec.items: field "name:float"`},
		{"unknown element field of a built-in", declareReq("apps", "v1", "deployments", "Deployment", "spec.template.spec.containers:records{nope:string}"), `has no field "nope"`},
		{"records of strings", declareReq("", "v1", "configmaps", "ConfigMap", "metadata.finalizers:records{a:string}"), "declared records"},
		{"unknown kind", declareReq("", "v1", "configmaps", "ConfigMap", "data:float"), `field "data:float": want path:kind`},
		{"no kind", declareReq("", "v1", "configmaps", "ConfigMap", "data"), `field "data": want path:kind`},
		{"empty segment", declareReq("", "v1", "configmaps", "ConfigMap", "metadata..name:string"), "empty path segment"},
		{"unknown field of a built-in", declareReq("", "v1", "configmaps", "ConfigMap", "spec.nope:string"), `has no field "spec"`},
		{"wrong kind for a built-in", declareReq("apps", "v1", "deployments", "Deployment", "spec.replicas:string"), "declared string"},
		{"map of a list", declareReq("", "v1", "configmaps", "ConfigMap", "metadata.finalizers:map"), "declared map"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseProjection(c.req)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestProjectionEncodesTypedAndUnstructuredAlike(t *testing.T) {
	p, err := parseProjection(declareReq("apps", "v1", "deployments", "Deployment",
		"metadata.name:string", "metadata.labels:map", "spec.replicas:int", "metadata.deletionTimestamp:bool",
		"spec.paused:bool", "metadata.finalizers:strings", "spec.selector:bytes", "metadata.creationTimestamp:string", "status.readyReplicas:int"))
	require.NoError(t, err)
	now := metav1.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d", Labels: map[string]string{"b": "2", "a": "1"}, DeletionTimestamp: &now,
			Finalizers: []string{"x"}, CreationTimestamp: now},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Paused: true,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "1"}}},
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "d", "labels": map[string]any{"a": "1", "b": "2"}, "deletionTimestamp": "2026-12-06T03:00:00Z",
			"finalizers": []any{"x"}, "creationTimestamp": "2026-12-06T03:00:00Z"},
		"spec": map[string]any{"replicas": int64(3), "paused": true, "selector": map[string]any{"matchLabels": map[string]any{"a": "1"}}},
	}}
	var typed, untyped flat.Builder
	require.NoError(t, p.encode(&typed, d))
	require.NoError(t, p.encode(&untyped, u))
	for _, b := range []*flat.Builder{&typed, &untyped} {
		r, err := flat.Parse(b.Bytes())
		require.NoError(t, err)
		require.NoError(t, r.Check(p.kinds))
		assert.Equal(t, "d", r.String(0))
		v, ok := r.Map(1).Get("b")
		assert.True(t, ok)
		assert.Equal(t, "2", v)
		assert.Equal(t, int64(3), r.Int(2))
		assert.True(t, r.Bool(3), "a set deletionTimestamp reads as true")
		assert.True(t, r.Bool(4))
		assert.Equal(t, "x", r.List(5).At(0))
		assert.JSONEq(t, `{"matchLabels":{"a":"1"}}`, string(r.Bytes(6)))
		assert.Equal(t, "2026-12-06T03:00:00Z", r.String(7))
		assert.Equal(t, int64(0), r.Int(8), "an absent field is zero")
	}
}

func manyFields(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("f%d:int", i)
	}
	return out
}

// containersProjection reads a Deployment's containers and, nested, their
// ports: a records field inside a records field.
const containersProjection = "spec.template.spec.containers:records{name:string,image:string,ports:records{name:string,containerPort:int,protocol:string}}"

func TestProjectionEncodesRecordsTypedAndUnstructuredAlike(t *testing.T) {
	p, err := parseProjection(declareReq("apps", "v1", "deployments", "Deployment", "metadata.name:string", containersProjection))
	require.NoError(t, err)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}}
	d.Spec.Template.Spec.Containers = []corev1.Container{
		{Name: "app", Image: "nginx:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}, {ContainerPort: 9090}}},
		{Name: "sidecar", Image: "envoy"},
	}
	u := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "d"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "app", "image": "nginx:1", "ports": []any{
				map[string]any{"name": "http", "containerPort": int64(80), "protocol": "TCP"}, map[string]any{"containerPort": int64(9090)}}},
			map[string]any{"name": "sidecar", "image": "envoy"},
		}}}}}}
	var typed, untyped flat.Builder
	require.NoError(t, p.encode(&typed, d))
	require.NoError(t, p.encode(&untyped, u))
	assert.Equal(t, typed.Bytes(), untyped.Bytes(), "typed and unstructured objects encode to the same bytes")
	rec, err := flat.Parse(typed.Bytes())
	require.NoError(t, err)
	require.NoError(t, p.check(rec))
	containers := rec.List(1)
	require.Equal(t, 2, containers.Len())
	app := containers.Record(0)
	assert.Equal(t, "app", app.String(0))
	assert.Equal(t, "nginx:1", app.String(1))
	require.Equal(t, 2, app.List(2).Len())
	assert.Equal(t, int64(80), app.List(2).Record(0).Int(1))
	assert.Equal(t, "TCP", app.List(2).Record(0).String(2))
	assert.Equal(t, int64(9090), app.List(2).Record(1).Int(1))
	assert.Equal(t, "sidecar", containers.Record(1).String(0))
	assert.Equal(t, 0, containers.Record(1).List(2).Len())

	// The same record, applied, is the object's containers again; empty
	// strings inside elements are left out for the server to default.
	obj, err := p.applyObject(rec, false, "demo", "d")
	require.NoError(t, err)
	got, found, err := unstructured.NestedSlice(obj, "spec", "template", "spec", "containers")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, []any{
		map[string]any{"name": "app", "image": "nginx:1", "ports": []any{
			map[string]any{"name": "http", "containerPort": int64(80), "protocol": "TCP"}, map[string]any{"containerPort": int64(9090)}}},
		map[string]any{"name": "sidecar", "image": "envoy"},
	}, got)

	bad := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{"not an object"}}}}}}
	var b flat.Builder
	require.ErrorContains(t, p.encode(&b, bad), "declared records, found string")
}

func TestApplyObjectRefusesMalformedElements(t *testing.T) {
	p, err := parseProjection(declareReq("demo.wre.dev", "v1", "widgets", "Widget", "status.conditions:records{type:string,ok:bool}"))
	require.NoError(t, err)
	var b flat.Builder
	b.Reset(1)
	b.SetRecords(0, 1, func(_ int, e *flat.Builder) {
		e.Reset(2)
		e.SetString(0, "Ready")
		e.SetInt(1, 7) // not a bool
	})
	rec, err := flat.Parse(b.Bytes())
	require.NoError(t, err)
	_, err = p.applyObject(rec, true, "demo", "w")
	require.ErrorIs(t, err, flat.ErrMalformed)
	assert.Contains(t, err.Error(), "field status.conditions[0]")

	b.Reset(1)
	b.SetRecords(0, 1, func(_ int, e *flat.Builder) { e.Reset(1) }) // too few slots
	rec, err = flat.Parse(b.Bytes())
	require.NoError(t, err)
	_, err = p.applyObject(rec, true, "demo", "w")
	require.ErrorIs(t, err, flat.ErrMalformed)
}

func TestProjectionReportsTypeMismatch(t *testing.T) {
	p, err := parseProjection(declareReq("demo.wre.dev", "v1", "widgets", "Widget", "spec.desired:int"))
	require.NoError(t, err, "custom resources are checked when encoded")
	var b flat.Builder
	err = p.encode(&b, &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"desired": "blue"}}})
	require.Error(t, err)
	assert.Equal(t, "projection field spec.desired: declared int, found string", err.Error())
}

func TestApplyObject(t *testing.T) {
	p, err := parseProjection(declareReq("demo.wre.dev", "v1", "widgets", "Widget",
		"metadata.name:string", "metadata.generation:int", "metadata.labels:map", "spec.desired:string", "status.current:string", "status.observedGeneration:int"))
	require.NoError(t, err)
	var b flat.Builder
	b.Reset(6)
	b.SetString(0, "ignored")
	b.SetInt(1, 7)
	b.SetMap(2, map[string]string{"a": "1"})
	b.SetString(3, "blue")
	b.SetString(4, "blue")
	b.SetInt(5, 7)
	rec, err := flat.Parse(b.Bytes())
	require.NoError(t, err)
	status, err := p.applyObject(rec, true, "demo", "w")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": "demo"},
		"status":   map[string]any{"current": "blue", "observedGeneration": int64(7)}}, status)
	spec, err := p.applyObject(rec, false, "demo", "w")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": "demo", "labels": map[string]any{"a": "1"}},
		"spec":     map[string]any{"desired": "blue"}}, spec)

	short, _ := flat.Parse([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	_, err = p.applyObject(short, true, "demo", "w")
	require.ErrorIs(t, err, flat.ErrMalformed, "a record with fewer slots than the projection is refused")
}

// FuzzApplyObject feeds arbitrary records from a guest to the host's apply
// decoding: it never panics, and what it accepts is a well-formed object.
func FuzzApplyObject(f *testing.F) {
	p, err := parseProjection(declareReq("demo.wre.dev", "v1", "widgets", "Widget",
		"metadata.labels:map", "spec.list:strings", "spec.raw:bytes", "status.current:string", "status.n:int", "status.ok:bool",
		"status.conditions:records{type:string,n:int,items:records{k:string}}"))
	if err != nil {
		f.Fatal(err)
	}
	var b flat.Builder
	b.Reset(7)
	b.SetMap(0, map[string]string{"a": "1"})
	b.SetStrings(1, []string{"x"})
	b.SetBytes(2, []byte(`{"k":[1,2]}`))
	b.SetString(3, "blue")
	b.SetRecords(6, 2, func(j int, e *flat.Builder) {
		e.Reset(3)
		e.SetString(0, "Ready")
		e.SetInt(1, int64(j))
		e.SetRecords(2, 1, func(_ int, ie *flat.Builder) { ie.Reset(1); ie.SetString(0, "v") })
	})
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := flat.Parse(data)
		if err != nil {
			return
		}
		for _, status := range []bool{false, true} {
			obj, err := p.applyObject(rec, status, "ns", "n")
			if err == nil && (obj["kind"] != "Widget" || obj["metadata"].(map[string]any)["name"] != "n") {
				t.Fatalf("accepted record gave %v", obj)
			}
		}
	})
}

// FuzzEncodeUnstructured encodes arbitrary JSON-like values: an error or a
// record that passes Check, never a panic.
func FuzzEncodeUnstructured(f *testing.F) {
	p, err := parseProjection(declareReq("demo.wre.dev", "v1", "widgets", "Widget",
		"spec.a:string", "spec.b:int", "spec.c:map", "spec.d:strings", "spec.e:bool", "spec.f:bytes"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("x", int64(1), "k", "v", true, 1.5)
	f.Fuzz(func(t *testing.T, s string, n int64, k, v string, ok bool, fl float64) {
		for _, spec := range []map[string]any{
			{"a": s, "b": n, "c": map[string]any{k: v}, "d": []any{s, v}, "e": ok, "f": map[string]any{"n": fl}},
			{"a": n, "b": fl, "c": []any{k}, "d": map[string]any{k: v}, "e": s, "f": nil},
			{"a": nil, "b": s, "c": map[string]any{k: n}, "d": []any{n}},
		} {
			var b flat.Builder
			if err := p.encode(&b, &unstructured.Unstructured{Object: map[string]any{"spec": spec}}); err != nil {
				continue
			}
			r, err := flat.Parse(b.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Check(p.kinds); err != nil {
				t.Fatal(err)
			}
		}
	})
}
