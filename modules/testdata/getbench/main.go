// Command getbench is a benchmark guest: the namespace of the reconciled
// request names the operation, its name the object, and every object lives
// in namespace "bench":
//
//   - "noop": no host call, the baseline of a reconcile;
//   - "get-protobuf" / "get-json": get the Deployment as a typed object
//     (protobuf on the wire) / as unstructured (JSON on the wire);
//   - "get-cr": get the Gizmo custom resource into a typed Go struct (JSON);
//   - "list-protobuf" / "list-json": list the ConfigMaps labelled
//     bench=list, typed / unstructured;
//   - "update-protobuf" / "update-json": get the Deployment and update it
//     unchanged, typed / unstructured;
//   - "decode-protobuf" / "decode-json": no host call; decode the Deployment
//     of the module config (fields "protobuf" and "json", base64) ten times,
//     which measures guest compute against the same code run natively.
package main

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

// Gizmo is a custom resource of about the size of the benchmark's
// Deployment: labels, and a spec with a list of 20 settings.
type Gizmo struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GizmoSpec `json:"spec,omitempty"`
}

// GizmoSpec is the desired state of a Gizmo.
type GizmoSpec struct {
	Image    string    `json:"image"`
	Replicas int32     `json:"replicas"`
	Settings []Setting `json:"settings,omitempty"`
}

// Setting is a name and a value.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DeepCopyObject implements runtime.Object.
func (g *Gizmo) DeepCopyObject() runtime.Object {
	c := *g
	g.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Spec.Settings = append([]Setting(nil), g.Spec.Settings...)
	return &c
}

var gizmoGV = schema.GroupVersion{Group: "bench.wre.dev", Version: "v1"}

func init() {
	s := runtime.NewScheme()
	if err := appsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	s.AddKnownTypes(gizmoGV, &Gizmo{})
	metav1.AddToGroupVersion(s, gizmoGV)
	wre.Register(wre.Module{Scheme: s, Setup: func(h *wre.Host) (wre.Reconciler, error) {
		c := h.Client()
		var encoded struct{ Protobuf, JSON []byte }
		if err := h.DecodeConfig(context.Background(), &encoded); err != nil {
			return nil, err
		}
		return wre.Func(func(ctx context.Context, req wre.Request) (wre.Result, error) {
			key := types.NamespacedName{Namespace: "bench", Name: req.Name}
			switch req.Namespace {
			case "noop":
				return wre.Result{}, nil
			case "get-protobuf":
				return wre.Result{}, c.Get(ctx, key, &appsv1.Deployment{})
			case "get-json":
				return wre.Result{}, c.Get(ctx, key, unstructuredDeployment())
			case "get-cr":
				return wre.Result{}, c.Get(ctx, key, &Gizmo{})
			case "list-protobuf":
				var l corev1.ConfigMapList
				err := c.List(ctx, &l, client.InNamespace("bench"), client.MatchingLabels{"bench": "list"})
				return wre.Result{}, listed(len(l.Items), err)
			case "list-json":
				l := &unstructured.UnstructuredList{}
				l.SetAPIVersion("v1")
				l.SetKind("ConfigMapList")
				err := c.List(ctx, l, client.InNamespace("bench"), client.MatchingLabels{"bench": "list"})
				return wre.Result{}, listed(len(l.Items), err)
			case "update-protobuf":
				d := &appsv1.Deployment{}
				if err := c.Get(ctx, key, d); err != nil {
					return wre.Result{}, err
				}
				return wre.Result{}, c.Update(ctx, d)
			case "decode-protobuf", "decode-json":
				return wre.Result{}, DecodeDeployment10(req.Namespace == "decode-json", encoded.Protobuf, encoded.JSON)
			case "update-json":
				d := unstructuredDeployment()
				if err := c.Get(ctx, key, d); err != nil {
					return wre.Result{}, err
				}
				return wre.Result{}, c.Update(ctx, d)
			}
			return wre.Result{}, wre.TerminalError(fmt.Errorf("unknown operation %q", req.Namespace))
		}), nil
	}})
}

// DecodeDeployment10 decodes a Deployment ten times from JSON or protobuf.
// modules/bench_test.go runs the same code natively.
func DecodeDeployment10(useJSON bool, pb, js []byte) error {
	for range 10 {
		var d appsv1.Deployment
		var err error
		if useJSON {
			err = json.Unmarshal(js, &d)
		} else {
			err = d.Unmarshal(pb)
		}
		if err != nil {
			return err
		}
		if d.Name == "" {
			return fmt.Errorf("decoded a Deployment without a name")
		}
	}
	return nil
}

func unstructuredDeployment() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apps/v1")
	u.SetKind("Deployment")
	return u
}

// listed fails a list that did not return the 100 objects of the fixture.
func listed(n int, err error) error {
	if err == nil && n != 100 {
		err = fmt.Errorf("listed %d objects, want 100", n)
	}
	return err
}

// main is never called: the host starts the module as a reactor.
func main() {}
