package sdktest_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/sdktest"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

// labeler is a whole module: it labels every ConfigMap it reconciles.
var labeler = wre.Module{
	Scheme: func() *runtime.Scheme {
		s := runtime.NewScheme()
		_ = corev1.AddToScheme(s)
		return s
	}(),
	Setup: func(h *wre.Host) (wre.Reconciler, error) {
		c := h.Client()
		return wre.Func(func(ctx context.Context, req wre.Request) (wre.Result, error) {
			var cm corev1.ConfigMap
			if err := c.Get(ctx, req.NamespacedName, &cm); err != nil {
				if apierrors.IsNotFound(err) {
					return wre.Result{}, nil
				}
				return wre.Result{}, err
			}
			if cm.Labels["seen"] == "true" {
				return wre.Result{}, nil
			}
			if cm.Labels == nil {
				cm.Labels = map[string]string{}
			}
			cm.Labels["seen"] = "true"
			return wre.Result{}, c.Update(ctx, &cm)
		}), nil
	},
}

// In a module, this is a Test function: sdktest.New(t, module, ...).
func ExampleNew() {
	t := &testing.T{} // provided by go test
	key := types.NamespacedName{Namespace: "ns", Name: "cm"}
	env := sdktest.New(t, labeler, sdktest.WithObjects(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}},
	))

	env.MustReconcile(key)
	env.MustReconcile(key) // already labelled: no write

	var cm corev1.ConfigMap
	env.MustGet(key, &cm)
	fmt.Println("label:", cm.Labels["seen"])
	for _, w := range env.Writes() {
		fmt.Println("write:", w, w.ContentType)
	}
	// Output:
	// label: true
	// write: update configmaps ns/cm application/vnd.kubernetes.protobuf
}
