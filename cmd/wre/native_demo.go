package main

import (
	"context"
	"flag"
	"fmt"
	"sync"

	"k8s.io/client-go/dynamic"

	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/native/statussync"
)

// nativeDemo runs the native statussync reconciler: for development, the
// failover tests and as the benchmark baseline. The Widget CRD must be
// installed (test/enginetest.InstallWidgetCRD, or apply modules/status-sync/crd.yaml); the engine does not install CRDs.
var nativeDemo bool

func init() {
	extendRun(runExtension{
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&nativeDemo, "native-demo", false, "run the built-in native reconciler of demo.wre.dev/v1 Widgets (development and tests)")
		},
		setup: func(ctx context.Context, mgr *manager.Manager, _ *sync.WaitGroup) error {
			if !nativeDemo {
				return nil
			}
			client, err := dynamic.NewForConfig(mgr.Config())
			if err != nil {
				return fmt.Errorf("native demo: %w", err)
			}
			return mgr.AddController(ctx, manager.ControllerSpec{
				Name:                    "statussync",
				Reconciler:              statussync.New(statussync.FromRegistry(mgr.Informers()), client),
				For:                     statussync.GVR,
				MaxConcurrentReconciles: 4,
			})
		},
	})
}
