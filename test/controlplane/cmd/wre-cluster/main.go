// Command wre-cluster builds and runs the local Kubernetes control plane that
// wre's tests use, for humans:
//
//	wre-cluster build          build etcd, kube-apiserver, kube-controller-manager into the cache
//	wre-cluster up [-dir D]    start a control plane in the background and print how to use it
//	wre-cluster down [-dir D]  stop it and remove its directory
//	wre-cluster run [-dir D]   start one in the foreground until Ctrl-C
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/wre-dev/wre/test/controlplane"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wre-cluster:", err)
		os.Exit(1)
	}
}

func defaultDir() string {
	root, err := controlplane.CacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "wre-cluster")
	}
	return filepath.Join(root, "cluster")
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: wre-cluster build|up|down|run [-dir DIR]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	dir := fs.String("dir", defaultDir(), "directory for the cluster's data, logs and kubeconfig")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "build":
		bin, err := controlplane.EnsureBinaries(ctx, os.Stderr)
		if err != nil {
			return err
		}
		fmt.Println(bin)
		return nil
	case "up":
		if _, err := os.Stat(filepath.Join(*dir, "state.json")); err == nil {
			return fmt.Errorf("a cluster is already up in %s (run `make cluster-down` first)", *dir)
		}
		cp, err := controlplane.Start(ctx, controlplane.Options{Dir: *dir, Detached: true, Log: os.Stderr})
		if err != nil {
			return err
		}
		printUsage(cp)
		return nil
	case "down":
		if err := controlplane.StopDetached(*dir); err != nil {
			return err
		}
		fmt.Println("cluster stopped; removed", *dir)
		return nil
	case "run":
		cp, err := controlplane.Start(ctx, controlplane.Options{Dir: *dir, Log: os.Stderr})
		if err != nil {
			return err
		}
		printUsage(cp)
		fmt.Println("Ctrl-C stops it.")
		<-ctx.Done()
		if err := cp.Stop(); err != nil {
			return err
		}
		return os.RemoveAll(*dir)
	default:
		return fmt.Errorf("unknown command %q: want build, up, down or run", args[0])
	}
}

func printUsage(cp *controlplane.ControlPlane) {
	fmt.Printf(`Local control plane is up.
  API server:  %s
  kubeconfig:  %s
  logs:        %s/*.log

Use it:
  export KUBECONFIG=%s
  kubectl get namespaces        # if you have kubectl
  go run ./cmd/wre run          # the engine picks up KUBECONFIG
`, cp.Server(), cp.KubeconfigPath(), cp.Dir(), cp.KubeconfigPath())
}
