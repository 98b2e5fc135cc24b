package host_test

import (
	"context"
	"fmt"
	"log"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
)

// A module goes from bytes to a reconcile.Reconciler in three steps: compile
// (validated, cached by digest), configure (permissions, limits, clients), and
// reconcile. In the engine, wasm comes from a module ConfigMap, the client is a
// dynamic client of the cluster and the cache the shared informers.
func Example() {
	ctx := context.Background()
	wasm := wasmModule(true, nil, abiFuncs(abi.MarkerV1, i64Const0)) // a guest that always succeeds

	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)
	compiled, err := rt.Compile(ctx, "example", wasm)
	if err != nil {
		log.Fatal(err)
	}
	defer compiled.Close(ctx)
	fmt.Println("ABI:", compiled.ABIVersion())

	m, err := rt.NewModule(ctx, compiled, host.ModuleOptions{
		Name:        "example",
		Client:      dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()),
		Primary:     schema.GroupVersionResource{Version: "v1", Resource: "configmaps"},
		PrimaryKind: "ConfigMap",
		Permissions: host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)

	var r reconcile.Reconciler = m
	res, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "default", Name: "cm"}})
	fmt.Println("result:", res.RequeueAfter, err)
	// Output:
	// ABI: wre_abi_v1
	// result: 0s <nil>
}
