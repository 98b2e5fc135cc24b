// Command sdkpanic is a test guest built with the Go SDK whose reconcile
// panics for objects named "panic" and succeeds for the others. The SDK
// recovers the panic and reports it to the host, which must treat it as a trap.
package main

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wre-dev/wre/guest-sdk/wre"
)

func init() {
	wre.Register(wre.Module{
		Scheme: runtime.NewScheme(),
		Setup: func(*wre.Host) (wre.Reconciler, error) {
			return wre.Func(func(_ context.Context, req wre.Request) (wre.Result, error) {
				if req.Name == "panic" {
					panic("boom in " + req.String())
				}
				return wre.Result{}, nil
			}), nil
		},
	})
}

func main() {}
