package client_test

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/client"
)

func TestMapper(t *testing.T) {
	m := &client.Mapper{}
	m.Override(schema.GroupKind{Group: "x.io", Kind: "Moose"}, "meese")
	tests := []struct {
		gvk  schema.GroupVersionKind
		want string
	}{
		{schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, "configmaps"},
		{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}, "networkpolicies"},
		{schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}, "ingresses"},
		{schema.GroupVersionKind{Version: "v1", Kind: "Endpoints"}, "endpoints"},
		{schema.GroupVersionKind{Group: "x.io", Version: "v2", Kind: "Moose"}, "meese"},
	}
	for _, tt := range tests {
		t.Run(tt.gvk.Kind, func(t *testing.T) {
			got := m.ResourceFor(tt.gvk)
			if got != tt.gvk.GroupVersion().WithResource(tt.want) {
				t.Fatalf("ResourceFor(%v) = %v, want %s", tt.gvk, got, tt.want)
			}
		})
	}
}

func TestListOptions(t *testing.T) {
	sel := labels.SelectorFromSet(labels.Set{"tier": "web"})
	tests := []struct {
		name string
		opts []client.ListOption
		want client.ListOptions
	}{
		{"none", nil, client.ListOptions{}},
		{"all", []client.ListOption{
			client.InNamespace("ns"), client.MatchingLabels{"b": "2", "a": "1"},
			client.MatchingFields{"metadata.name": "x"}, client.Limit(5), client.Continue("tok"), client.Live,
		}, client.ListOptions{Namespace: "ns", LabelSelector: "a=1,b=2", FieldSelector: "metadata.name=x", Limit: 5, Continue: "tok", Live: true}},
		{"selector", []client.ListOption{client.MatchingLabelsSelector{Selector: sel}}, client.ListOptions{LabelSelector: "tier=web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := client.ApplyListOptions(tt.opts); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWriteOptions(t *testing.T) {
	uid := types.UID("u")
	got := client.ApplyDeleteOptions([]client.DeleteOption{
		client.DryRunAll, client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationOrphan),
	})
	want := client.WriteOptions{DryRun: true, Preconditions: metav1.Preconditions{UID: &uid}, PropagationPolicy: metav1.DeletePropagationOrphan}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("delete options %+v", got)
	}
	if p := client.ApplyPatchOptions([]client.PatchOption{client.ForceOwnership}); !p.Force || p.DryRun {
		t.Fatalf("patch options %+v", p)
	}
	if g := client.ApplyGetOptions([]client.GetOption{client.Live}); !g.Live {
		t.Fatal("Live not applied")
	}
}

func TestPatches(t *testing.T) {
	orig := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "7", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Data: map[string]string{"keep": "1", "drop": "2", "change": "3"}}
	mod := orig.DeepCopy()
	delete(mod.Data, "drop")
	mod.Data["change"] = "4"
	mod.Data["add"] = "5"

	tests := []struct {
		name  string
		patch client.Patch
		typ   types.PatchType
		want  string
	}{
		{"merge from", client.MergeFrom(orig), types.MergePatchType, `{"data":{"add":"5","change":"4","drop":null}}`},
		{"merge from with lock", client.MergeFromWithOptimisticLock(orig), types.MergePatchType,
			`{"data":{"add":"5","change":"4","drop":null},"metadata":{"resourceVersion":"7"}}`},
		{"raw", client.RawPatch(types.JSONPatchType, []byte(`[]`)), types.JSONPatchType, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.patch.Data(mod)
			if err != nil {
				t.Fatal(err)
			}
			if tt.patch.Type() != tt.typ || !jsonEqual(t, b, tt.want) {
				t.Fatalf("%s %s, want %s %s", tt.patch.Type(), b, tt.typ, tt.want)
			}
		})
	}

	t.Run("apply drops managedFields without changing the object", func(t *testing.T) {
		b, err := client.Apply.Data(mod)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["metadata"].(map[string]any)["managedFields"]; ok || client.Apply.Type() != types.ApplyPatchType {
			t.Fatalf("apply body %s", b)
		}
		if len(mod.ManagedFields) != 1 {
			t.Fatal("managedFields of the object were lost")
		}
	})
}

func jsonEqual(t *testing.T, a []byte, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
