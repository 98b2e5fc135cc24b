package manager_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wre-dev/wre/engine/logging"
	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/native/statussync"
)

// A manager with leader election that runs the native Widget reconciler until
// SIGTERM; `wre run --leader-elect --native-demo` does the same.
func Example() {
	log, _ := logging.New(logging.Options{Format: logging.FormatText})
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		log.Error(err, "load kubeconfig")
		return
	}
	mgr, err := manager.New(manager.Options{
		Config: cfg,
		Logger: log,
		LeaderElection: manager.LeaderElection{
			Enabled: true, LeaseName: "wre-leader", Namespace: "wre-system",
		},
	})
	if err != nil {
		log.Error(err, "new manager")
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	client := dynamic.NewForConfigOrDie(mgr.Config())
	if err := mgr.AddController(ctx, manager.ControllerSpec{
		Name:       "statussync",
		Reconciler: statussync.New(statussync.FromRegistry(mgr.Informers()), client),
		For:        statussync.GVR,
	}); err != nil {
		log.Error(err, "add controller")
		return
	}
	// Start returns nil after a graceful shutdown and an error wrapping
	// leader.ErrLost when the lease was lost: exit non-zero then.
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}
