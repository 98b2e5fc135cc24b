// Command plaincontroller is the baseline of the memory benchmark: the
// smallest typical client-go controller, a process of its own. It runs a
// shared informer on ConfigMaps (its own cache), a rate-limited work queue
// and two workers whose reconcile reads the ConfigMap from the cache and
// counts its keys. Once its cache has synced it prints "synced N" (N
// ConfigMaps) on standard output, which the benchmark waits for.
//
//	plaincontroller --kubeconfig FILE [--namespace NS]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	namespace := flag.String("namespace", "", "namespace to watch (default: all)")
	workers := flag.Int("workers", 2, "reconcile workers")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *kubeconfig, *namespace, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "plaincontroller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, namespace string, workers int) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Hour, informers.WithNamespace(namespace))
	informer := factory.Core().V1().ConfigMaps()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName]())
	enqueue := func(obj any) {
		if name, err := cache.DeletionHandlingObjectToName(obj); err == nil {
			queue.Add(name)
		}
	}
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return fmt.Errorf("cache did not sync")
	}
	all, err := informer.Lister().List(labels.Everything())
	if err != nil {
		return err
	}
	fmt.Printf("synced %d\n", len(all))

	var keys atomic.Int64 // what the reconciles computed, so they are not optimised away
	lister := informer.Lister()
	reconcile := func(name cache.ObjectName) error {
		cm, err := lister.ConfigMaps(name.Namespace).Get(name.Name)
		if err != nil {
			return nil //nolint:nilerr // deleted: nothing to do
		}
		keys.Add(int64(len(cm.Data) + len(cm.BinaryData)))
		return nil
	}
	for range workers {
		go func() {
			for {
				name, shutdown := queue.Get()
				if shutdown {
					return
				}
				if err := reconcile(name); err != nil {
					queue.AddRateLimited(name)
				} else {
					queue.Forget(name)
				}
				queue.Done(name)
			}
		}()
	}
	<-ctx.Done()
	queue.ShutDown()
	_ = keys.Load()
	return nil
}
