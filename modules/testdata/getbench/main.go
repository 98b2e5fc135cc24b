// Command getbench is a benchmark guest: reconciling "protobuf/<name>" gets the
// Deployment <name> as a typed object (protobuf on the wire), and
// "json/<name>" gets it as unstructured (JSON on the wire); "noop/<name>"
// makes no host call, the baseline of a reconcile.
package main

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

func init() {
	s := runtime.NewScheme()
	if err := appsv1.AddToScheme(s); err != nil {
		panic(err)
	}
	wre.Register(wre.Module{Scheme: s, Setup: func(h *wre.Host) (wre.Reconciler, error) {
		c := h.Client()
		return wre.Func(func(ctx context.Context, req wre.Request) (wre.Result, error) {
			var obj client.Object
			switch req.Namespace {
			case "noop":
				return wre.Result{}, nil
			case "protobuf":
				obj = &appsv1.Deployment{}
			case "json":
				u := &unstructured.Unstructured{}
				u.SetAPIVersion("apps/v1")
				u.SetKind("Deployment")
				obj = u
			default:
				return wre.Result{}, wre.TerminalError(fmt.Errorf("unknown encoding %q", req.Namespace))
			}
			return wre.Result{}, c.Get(ctx, types.NamespacedName{Namespace: "bench", Name: req.Name}, obj)
		}), nil
	}})
}

// main is never called: the host starts the module as a reactor.
func main() {}
