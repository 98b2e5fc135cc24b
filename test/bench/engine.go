package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// Engine returns bin/wre, the static engine binary `make bench` builds
// (`make image-binary`), so that the figures are those of what ships.
func (e *Env) Engine() (string, error) {
	bin := filepath.Join(e.Root, "bin", "wre")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s missing: run make image-binary (make bench does): %w", bin, err)
	}
	return bin, nil
}

// StartEngine starts `bin/wre run` against cp with JSON logs on loopback
// ports, plus args, and waits until it serves /metrics. The caller stops it.
func (e *Env) StartEngine(ctx context.Context, cp *controlplane.ControlPlane, name string, args ...string) (*enginetest.Engine, string, error) {
	bin, err := e.Engine()
	if err != nil {
		return nil, "", err
	}
	eng, err := enginetest.StartEngine(bin, name, append([]string{"--kubeconfig", cp.KubeconfigPath(), "--log-format", "json",
		"--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"}, args...)...)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	addr, err := eng.Address(ctx, "metrics")
	if err != nil {
		_ = eng.Stop(10 * time.Second)
		return nil, "", err
	}
	return eng, addr, nil
}

// widgetCluster returns the run's control plane with the Widget CRD
// installed, and an admin client.
func (e *Env) widgetCluster(ctx context.Context) (*controlplane.ControlPlane, kubernetes.Interface, error) {
	cp, err := e.ControlPlane(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := enginetest.InstallWidgetCRD(ctx, cp.Config()); err != nil {
		return nil, nil, err
	}
	kube, err := kubernetes.NewForConfig(cp.Config())
	return cp, kube, err
}

// builtModules caches the wasm of the example modules for the run.
var builtModules struct {
	mu   sync.Mutex
	wasm map[string][]byte
}

// moduleWasm builds the example module modules/NAME once per run (Go's build
// cache makes later runs fast) and returns the wasm.
func (e *Env) moduleWasm(ctx context.Context, name string) ([]byte, error) {
	b := &builtModules
	b.mu.Lock()
	defer b.mu.Unlock()
	if w, ok := b.wasm[name]; ok {
		return w, nil
	}
	dir, err := os.MkdirTemp("", "wre-bench-module-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, name+".wasm")
	fmt.Fprintf(e.Log, "bench: building modules/%s\n", name)
	if err := modules.GoBuild(ctx, filepath.Join(e.Root, "modules", name), out); err != nil {
		return nil, err
	}
	w, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	if b.wasm == nil {
		b.wasm = map[string][]byte{}
	}
	b.wasm[name] = w
	return w, nil
}

// ShipModule packages the example module modules/NAME as `wre package
// --apply` does and creates its ConfigMaps in namespace (part 0 last, so the
// engine sees a complete set), after edit changed its manifest (nil: none).
// The copy's manifest name is as; several copies of one module under
// distinct names are distinct modules to the engine, sharing the compiled
// code because their digest is the same. Packaging uses zstd's "better"
// level rather than `wre package`'s "best": the engine decompresses any
// level, "best" takes seconds per copy, and "better" is within 8% of its
// size for the example modules (which matters where the engine caches the
// ConfigMaps).
func (e *Env) ShipModule(ctx context.Context, kube kubernetes.Interface, namespace, name, as string, edit func(*modules.Manifest)) error {
	wasm, err := e.moduleWasm(ctx, name)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(e.Root, "modules", name, "module.yaml"))
	if err != nil {
		return err
	}
	m, err := modules.ParseManifest(raw)
	if err != nil {
		return err
	}
	m.Name = as
	if edit != nil {
		edit(m)
	}
	cms, err := modules.Package(m, wasm, modules.PackageOptions{Namespace: namespace, Level: zstd.SpeedBetterCompression})
	if err != nil {
		return err
	}
	for _, cm := range append(cms[1:], cms[0]) {
		if _, err := kube.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("ship module %s as %s: %w", name, as, err)
		}
	}
	return nil
}

// ModuleStatuses reads /modules from the engine's metrics address.
func ModuleStatuses(ctx context.Context, metricsAddr string) ([]registry.Status, error) {
	return registry.FetchStatuses(ctx, nil, "http://"+metricsAddr+"/modules")
}

// WaitModules polls /modules every 200 ms until n modules are Loaded and
// returns their statuses; a module that failed to load fails the wait.
func WaitModules(ctx context.Context, metricsAddr string, n int) ([]registry.Status, error) {
	var last []registry.Status
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		st, err := ModuleStatuses(ctx, metricsAddr)
		if err != nil {
			return false, nil //nolint:nilerr // not serving yet
		}
		last = st
		loaded := 0
		for _, s := range st {
			switch s.State {
			case registry.StateLoaded:
				loaded++
			case registry.StateLoadFailed:
				return false, fmt.Errorf("module %s: %s", s.Name, s.LastError)
			}
		}
		return loaded >= n, nil
	})
	if err != nil {
		return last, fmt.Errorf("wait for %d loaded modules (have %d): %w", n, len(last), err)
	}
	return last, nil
}

// WaitReconcilesSettle polls /modules every second until the sum of the
// modules' reconciles stays the same for quiet, i.e. the work the engine
// found at load is done, and returns that sum.
func WaitReconcilesSettle(ctx context.Context, metricsAddr string, quiet time.Duration) (int64, error) {
	var last int64 = -1
	since := time.Now()
	for {
		st, err := ModuleStatuses(ctx, metricsAddr)
		if err != nil {
			return 0, err
		}
		var sum int64
		for _, s := range st {
			sum += s.Reconciles
		}
		if sum != last {
			last, since = sum, time.Now()
		} else if time.Since(since) >= quiet {
			return sum, nil
		}
		select {
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		case <-time.After(time.Second):
		}
	}
}

// Namespace creates a namespace named prefix-<random> and returns its name
// and a function that deletes it and waits (up to 5 minutes) until it is
// gone, so that the objects in it cannot disturb what runs next.
func Namespace(ctx context.Context, kube kubernetes.Interface, prefix string) (string, func() error, error) {
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, err
	}
	name := ns.Name
	return name, func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if err := kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	}, nil
}

// fastClient is cp's admin configuration without a client-side rate limit
// worth the name, for load generators: the API server is what should limit.
func fastClient(cp *controlplane.ControlPlane) *rest.Config {
	cfg := cp.Config()
	cfg.QPS, cfg.Burst = 10000, 20000
	return cfg
}

// parallel runs fn(i) for i in [0, n) on workers goroutines and returns the
// first error; after an error no new calls start.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// MetricSum scrapes the engine's /metrics and returns the sum of the
// counter or gauge name over the series whose labels include labels.
func MetricSum(ctx context.Context, metricsAddr, name string, labels map[string]string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("parse /metrics: %w", err)
	}
	var sum float64
	f, ok := families[name]
	if !ok {
		return 0, fmt.Errorf("no metric %s on /metrics", name)
	}
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue series
			}
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum, nil
}

// positiveEnv returns the positive number in environment variable name, or
// def when it is unset: suites take smaller sizes from the environment while
// being developed, and the document records the defaults.
func positiveEnv(name string, def int) (int, error) {
	s, ok := os.LookupEnv(name)
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want a positive number", name, s)
	}
	return n, nil
}
