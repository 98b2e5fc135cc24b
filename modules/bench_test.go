package modules_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/reconcile"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
)

// BenchmarkStatusSync compares a reconcile of an in-sync Widget (one get, no
// write) by the status-sync wasm module with the same logic as a native
// reconciler on the same fake cluster.
func BenchmarkStatusSync(b *testing.B) {
	widgets := schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "widgets"}
	h := run(b, "status-sync", wasmtest.Options{
		ListKinds: map[schema.GroupVersionResource]string{widgets: "WidgetList"},
		Objects: []runtime.Object{object("demo.wre.dev/v1", "Widget", "demo", "w", map[string]any{
			"spec":   map[string]any{"desired": "blue"},
			"status": map[string]any{"current": "blue"},
		})},
		// Informers serve the primary resource in the engine.
		Cached: []schema.GroupVersionResource{widgets},
	})
	native := reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		w, err := h.Client.Resource(widgets).Namespace(req.Namespace).Get(ctx, req.Name, metav1.GetOptions{})
		if err != nil {
			return reconcile.Result{}, err
		}
		desired, _, _ := unstructured.NestedString(w.Object, "spec", "desired")
		current, _, _ := unstructured.NestedString(w.Object, "status", "current")
		observed, _, _ := unstructured.NestedInt64(w.Object, "status", "observedGeneration")
		if desired != current || observed != w.GetGeneration() {
			return reconcile.Result{}, fmt.Errorf("benchmark fixture out of sync")
		}
		return reconcile.Result{}, nil
	})
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "demo", Name: "w"}}
	for name, r := range map[string]reconcile.Reconciler{"impl=wasm": h.Module, "impl=native": native} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Reconcile(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGetDeployment compares getting a Deployment from the host's cache
// into a typed object (protobuf on the wire) and into an unstructured object
// (JSON on the wire), in one reconcile of the getbench guest; "noop" is a
// reconcile without host call.
func BenchmarkGetDeployment(b *testing.B) {
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	h := wasmtest.New(b, wasmtest.Build(b, "testdata/getbench"), wasmtest.Options{
		Module:  host.ModuleOptions{Name: "getbench"},
		Objects: []runtime.Object{deployment()},
		Cached:  []schema.GroupVersionResource{deployments},
	})
	for _, enc := range []string{"noop", "protobuf", "json"} {
		b.Run("encoding="+enc, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := h.Reconcile(b.Context(), enc, "d")
				require.NoError(b, err)
			}
		})
	}
}

// deployment is a Deployment of typical size: labels, annotations, two
// containers with environment, ports, probes and resources.
func deployment() *appsv1.Deployment {
	env := make([]corev1.EnvVar, 20)
	for i := range env {
		env[i] = corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", i), Value: fmt.Sprintf("value-%d", i)}
	}
	container := func(name string) corev1.Container {
		return corev1.Container{
			Name: name, Image: "registry.example/" + name + ":1.2.3", Env: env,
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready"}}},
		}
	}
	labels := map[string]string{"app.kubernetes.io/name": "d", "app.kubernetes.io/part-of": "bench", "tier": "web"}
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "d", Labels: labels,
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "3", "owner": "team-a"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{container("app"), container("sidecar")}},
			},
		},
		Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, UpdatedReplicas: 3},
	}
}
