package informers_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	"github.com/wre-dev/wre/engine/informers"
)

func ExampleRegistry() {
	// In the engine: informers.Options{Config: restConfig}. Fakes keep the
	// example self-contained.
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	cm := func(name, app string) runtime.Object {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name, Labels: map[string]string{"app": app}}}
	}
	registry, err := informers.NewRegistry(informers.Options{
		Typed:   k8sfake.NewClientset(cm("c", "web"), cm("a", "web"), cm("b", "db"), cm("d", "web")),
		Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		Mapper:  mapper,
	})
	if err != nil {
		panic(err)
	}
	defer registry.Stop()

	ctx := context.Background()
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	inf, err := registry.Acquire(ctx, gvr) // a controller takes a reference
	if err != nil {
		panic(err)
	}
	defer registry.Release(gvr)
	if err := inf.WaitForSync(ctx); err != nil {
		panic(err)
	}

	opts := metav1.ListOptions{LabelSelector: "app=web", Limit: 2}
	for page := 1; ; page++ {
		items, next, err := inf.List("demo", opts)
		if err != nil {
			panic(err)
		}
		for _, obj := range items {
			fmt.Printf("page %d: %s\n", page, obj.(*corev1.ConfigMap).Name) // read only: never mutate cached objects
		}
		if next == "" {
			break
		}
		opts.Continue = next
	}
	// Output:
	// page 1: a
	// page 1: c
	// page 2: d
}
