package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/health"
	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/memo"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/modulestatus"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/host"
)

// moduleFlags configure the module registry of `wre run`.
var moduleFlags struct {
	namespace string
	cacheDir  string
	policy    string
	maxBytes  int64
	trusted   bool
	limits    modules.Limits // ceilings set by flags; zero: the policy file's, else modules.DefaultLimits'
	memoSize  int
	idle      time.Duration
}

func init() {
	extendRun(runExtension{
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&moduleFlags.namespace, "module-namespace", "", "load the modules shipped in ConfigMaps labelled wre.dev/module in this namespace (empty: load none)")
			fs.StringVar(&moduleFlags.cacheDir, "cache-dir", "", "directory of the compiled-module cache (empty: compile in memory at every start)")
			fs.StringVar(&moduleFlags.policy, "policy", "", "engine policy file capping the permissions of modules (empty: no cap)")
			fs.Int64Var(&moduleFlags.maxBytes, "max-module-bytes", modules.DefaultMaxWasmBytes, "largest uncompressed wasm module accepted")
			moduleFlags.limits.RegisterFlags(fs)
			fs.IntVar(&moduleFlags.memoSize, "memo-entries", memo.DefaultSize, "read sets each module with memoize: true keeps to skip unchanged reconciles; the least recently used are evicted (see docs/operations.md)")
			fs.DurationVar(&moduleFlags.idle, "idle-timeout", host.DefaultIdleTimeout, "close a module's instances after they stay unused this long, so an idle module holds no instance; the next reconcile creates one again")
			fs.BoolVar(&moduleFlags.trusted, "trusted-guests", false, "run modules without loop checks: Go guests use 3-4x less CPU, but a timeout no longer stops one that loops without calling the host (see docs/operations.md); only for modules you trust")
		},
		setup: setupModules,
	})
}

// setupModules starts the module registry beside the manager, in background
// until ctx is done, serves /modules next to /metrics, and publishes the same
// state as WreModule objects (kubectl get wremodules).
func setupModules(ctx context.Context, mgr *manager.Manager, background *sync.WaitGroup) error {
	if moduleFlags.namespace == "" {
		return nil
	}
	log := logr.FromContextOrDiscard(ctx)
	policy, err := enginePolicy(moduleFlags.policy, moduleFlags.limits)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(mgr.Config())
	if err != nil {
		return fmt.Errorf("module registry: %w", err)
	}
	dyn, err := dynamic.NewForConfig(mgr.Config())
	if err != nil {
		return fmt.Errorf("module registry: %w", err)
	}
	hostMetrics, err := host.NewMetrics(mgr.Metrics().Registerer())
	if err != nil {
		return fmt.Errorf("module registry: %w", err)
	}
	regMetrics, err := registry.NewMetrics(mgr.Metrics().Registerer())
	if err != nil {
		return fmt.Errorf("module registry: %w", err)
	}
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: moduleFlags.cacheDir, TrustedGuests: moduleFlags.trusted, IdleTimeout: moduleFlags.idle, Metrics: hostMetrics, Logger: log.WithName("host")})
	if err != nil {
		return fmt.Errorf("module registry: %w", err)
	}
	if moduleFlags.trusted {
		log.Info("Guest loop checks are off (--trusted-guests): a module that loops without calling the host is not stopped by its timeout; /healthz fails while one runs")
		mgr.AddHealthz("guests", runawayCheck(rt))
	}
	reg, err := registry.New(registry.Options{
		Namespace: moduleFlags.namespace, Client: client, DynamicClient: dyn, Config: mgr.Config(),
		Controllers: mgr, Informers: mgr.Informers(), Runtime: rt, Policy: policy,
		MaxWasmBytes: moduleFlags.maxBytes, MemoSize: moduleFlags.memoSize, Metrics: regMetrics, Logger: log,
	})
	if err == nil {
		err = mgr.HandleMetricsPath("/modules", reg.Handler())
	}
	if err != nil {
		_ = rt.Close(ctx)
		return fmt.Errorf("module registry: %w", err)
	}
	publisher, err := modulestatus.New(modulestatus.Options{
		Namespace: moduleFlags.namespace, Client: dyn, Source: reg, Leading: mgr.Leading,
		Identity: mgr.Identity(), Logger: log,
	})
	if err != nil {
		_ = rt.Close(ctx)
		return fmt.Errorf("module registry: %w", err)
	}
	background.Go(func() { publisher.Run(ctx) })
	background.Go(func() {
		if err := reg.Start(ctx); err != nil {
			log.Error(err, "Module registry stopped")
		}
		_ = rt.Close(context.WithoutCancel(ctx))
	})
	return nil
}

// runawayCheck fails /healthz while guest code runs on after its reconcile
// timed out (only possible with --trusted-guests): nothing but a process exit
// stops it, so the kubelet's liveness probe should restart the pod.
func runawayCheck(rt interface{ Runaways() int }) health.Check {
	return func(*http.Request) error {
		if n := rt.Runaways(); n > 0 {
			return fmt.Errorf("%d module instance(s) still run guest code after their reconcile timed out (--trusted-guests); a restart stops them", n)
		}
		return nil
	}
}

// enginePolicy is the policy of `wre run`: the policy file at path
// (modules.AllowAll when path is empty) with the ceilings set by flags over
// the file's, and the file's over the defaults.
func enginePolicy(path string, flags modules.Limits) (*modules.Policy, error) {
	if err := flags.Validate(); err != nil {
		return nil, err
	}
	policy := *modules.AllowAll
	if path != "" {
		p, err := modules.LoadPolicy(path)
		if err != nil {
			return nil, err
		}
		policy = *p
	}
	policy.Limits = flags.Over(policy.Limits)
	return &policy, nil
}
