// Command demo runs wre end to end on a local control plane: it builds what is
// missing (the control plane binaries in parallel with the wre binary and the
// three example modules), starts etcd, kube-apiserver and
// kube-controller-manager, ships the modules as ConfigMaps with `wre package
// --apply`, starts `wre run` with its metrics on localhost:8080, creates
// sample objects, shows what got reconciled and what to try next. It stays up
// until Ctrl-C, then stops everything it started, keeps the engine log and
// exits 0.
//
//	go run ./test/demo            # what `make demo` runs
//	go run ./test/demo -exit      # stop after showing the results (used by tests)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/wre-dev/wre/engine/modulestatus"
	"github.com/wre-dev/wre/test/controlplane"
)

// moduleNamespace is where the demo ships module ConfigMaps, as deploy/ does.
const moduleNamespace = "wre-system"

// The engine's metrics and probe addresses when they are free; the README
// shows them.
const (
	defaultMetricsAddr = "127.0.0.1:8080"
	defaultProbeAddr   = "127.0.0.1:8081"
)

var exampleModules = []string{"status-sync", "configmap-replicator", "app-operator"}

func main() {
	exit := flag.Bool("exit", false, "stop after the sample objects are reconciled instead of waiting for Ctrl-C")
	timeout := flag.Duration("reconcile-timeout", 5*time.Minute, "how long to wait for the sample objects to be reconciled")
	flag.Parse()
	// Ctrl-C is the way to end the demo: it must reach the demo alone, not
	// make and go run, which would report it as a failure.
	defer takeTerminal()()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, options{exitWhenDone: *exit, reconcileTimeout: *timeout, fixedPorts: true, out: os.Stdout})
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Println("demo: interrupted; everything it started is stopped")
	case err != nil:
		fmt.Fprintln(os.Stderr, "demo:", err)
		stop()
		os.Exit(1)
	}
}

// options configure run.
type options struct {
	// exitWhenDone returns once the samples are reconciled instead of waiting
	// for the context to end.
	exitWhenDone bool
	// reconcileTimeout bounds the wait for the samples to be reconciled.
	reconcileTimeout time.Duration
	// fixedPorts serves the engine on defaultMetricsAddr and
	// defaultProbeAddr when they are free; else on free ports.
	fixedPorts bool
	// out receives the demo's progress and results. Defaults to io.Discard.
	out io.Writer
	// then, when set, runs after the samples are reconciled and before
	// everything is torn down (tests use it to check more behaviour).
	then func(ctx context.Context, r *results) error
}

// results is what a running demo offers to look at.
type results struct {
	kube        kubernetes.Interface
	dyn         dynamic.Interface
	metricsAddr string
	engineLog   string
	engine      *exec.Cmd
	cp          *controlplane.ControlPlane
}

func run(ctx context.Context, opts options) error {
	out := opts.out
	if out == nil {
		out = io.Discard
	}
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	began := time.Now()
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "wre-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// The engine log outlives the demo, to read what happened.
	cache, err := controlplane.CacheDir()
	if err != nil {
		return err
	}
	engineLog := filepath.Join(cache, "demo", "wre.log")
	if err := os.MkdirAll(filepath.Dir(engineLog), 0o755); err != nil {
		return err
	}

	// The control plane binaries (minutes, the first time) build while the
	// wre binary and the modules do.
	step("building what is missing: the control plane binaries, the wre binary and the example modules, in parallel")
	wre := filepath.Join(work, "wre")
	var wg sync.WaitGroup
	var cpErr error
	wg.Go(func() { _, cpErr = controlplane.EnsureBinaries(ctx, out) })
	var current atomic.Value
	stopBeat := heartbeat(out, progressInterval, func() string { return current.Load().(string) })
	buildErr := func() error {
		current.Store("go build ./cmd/wre (step 1/4)")
		fmt.Fprintf(out, "    %s\n", current.Load())
		if err := command(ctx, root, out, "go", "build", "-o", wre, "./cmd/wre"); err != nil {
			return err
		}
		for i, m := range exampleModules {
			current.Store(fmt.Sprintf("wre build modules/%s (step %d/4)", m, i+2))
			fmt.Fprintf(out, "    %s\n", current.Load())
			if err := command(ctx, root, io.Discard, wre, "build", "-o", filepath.Join(work, m+".wasm"), filepath.Join("modules", m)); err != nil {
				return err
			}
		}
		return nil
	}()
	stopBeat()
	if buildErr == nil {
		step("wre and the example modules are built (%s)", time.Since(began).Round(time.Second))
	}
	wg.Wait()
	if err := errors.Join(buildErr, cpErr); err != nil {
		return err
	}

	step("starting the local control plane (etcd, kube-apiserver, kube-controller-manager)")
	cp, err := controlplane.Start(ctx, controlplane.Options{Log: out})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the control plane")
		_ = cp.Stop()
	}()
	cfg := cp.Config()
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)

	step("installing the CRDs (WreModule and the examples') and the %s namespace", moduleNamespace)
	for _, crd := range []string{"deploy/base/wremodule-crd.yaml", "modules/status-sync/crd.yaml", "modules/app-operator/crd.yaml"} {
		if err := applyFile(ctx, dyn, filepath.Join(root, crd)); err != nil {
			return err
		}
	}
	if err := waitServed(ctx, dyn); err != nil {
		return err
	}
	for _, ns := range []string{moduleNamespace, "demo", "team-a", "team-b"} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}

	step("shipping the modules as ConfigMaps with `wre package --apply`")
	for _, m := range exampleModules {
		if err := command(ctx, root, out, wre, "package", "--apply", "--namespace", moduleNamespace,
			"--kubeconfig", cp.KubeconfigPath(), "--manifest", filepath.Join("modules", m, "module.yaml"), filepath.Join(work, m+".wasm")); err != nil {
			return err
		}
	}

	var metricsAddr, probeAddr string
	if opts.fixedPorts {
		metricsAddr, probeAddr, err = engineAddrs(defaultMetricsAddr, defaultProbeAddr)
	} else {
		metricsAddr, probeAddr, err = engineAddrs("", "")
	}
	if err != nil {
		return err
	}
	if opts.fixedPorts && metricsAddr != defaultMetricsAddr {
		step("%s or %s is in use: the engine serves on %s and %s instead", defaultMetricsAddr, defaultProbeAddr, metricsAddr, probeAddr)
	}
	step("starting `wre run` (metrics on %s, log: %s)", metricsAddr, engineLog)
	engine, err := startEngine(root, wre, engineLog, "run", "--kubeconfig", cp.KubeconfigPath(),
		"--module-namespace", moduleNamespace, "--cache-dir", filepath.Join(work, "compilation-cache"),
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr, "--log-format", "text")
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the engine")
		_ = engine.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = engine.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = engine.Process.Kill()
			<-done
		}
		fmt.Fprintf(out, "engine log kept at %s\n", engineLog)
	}()

	step("creating sample objects")
	if err := createSamples(ctx, kube, dyn); err != nil {
		return err
	}
	step("waiting for the modules to reconcile them (the first load compiles ~3 MB of wasm per module)")
	waitCtx, cancel := context.WithTimeout(ctx, opts.reconcileTimeout)
	defer cancel()
	if err := waitReconciled(waitCtx, out, kube, dyn); err != nil {
		fmt.Fprintf(os.Stderr, "last engine log lines:\n%s\n", controlplane.Tail(engineLog, 30))
		return err
	}

	fmt.Fprintln(out)
	_ = command(ctx, root, out, wre, "status", "--url", "http://"+metricsAddr)
	fmt.Fprintf(out, `
Everything above was reconciled by wasm modules loaded from ConfigMaps (up after %s).
  metrics:     http://%[2]s/metrics
  modules:     http://%[2]s/modules
  readiness:   http://%[3]s/readyz
  kubeconfig:  %[4]s
  engine log:  %[5]s (kept after Ctrl-C)

What to try next, in another terminal in this checkout (kubectl: any recent release):
  export KUBECONFIG=%[4]s
  make install && wre status --url http://%[2]s
  kubectl -n wre-system get wremodules -o wide                                # the same, as the engine publishes it
  curl -s http://%[2]s/metrics | grep '^controller_runtime_reconcile_total'
  kubectl -n demo patch widget widget-1 --type merge -p '{"spec":{"desired":"purple"}}'
  kubectl -n demo get widget widget-1 -o jsonpath='{.status.current}{"\n"}'   # status-sync made it purple
  kubectl -n demo annotate configmap shared-settings wre.dev/replicate-to=team-a --overwrite
  kubectl get configmaps -A -l wre.dev/replica-of-name=shared-settings      # the copy in team-b is gone
  # and ship a new module version with the README's "Ship a module" commands

Ctrl-C stops everything and exits 0.
`, time.Since(began).Round(time.Second), metricsAddr, probeAddr, cp.KubeconfigPath(), engineLog)
	if opts.then != nil {
		if err := opts.then(ctx, &results{kube: kube, dyn: dyn, metricsAddr: metricsAddr, engineLog: engineLog, engine: engine, cp: cp}); err != nil {
			fmt.Fprintf(os.Stderr, "last engine log lines:\n%s\n", controlplane.Tail(engineLog, 30))
			return err
		}
	}
	if opts.exitWhenDone {
		return nil
	}
	<-ctx.Done()
	fmt.Fprintln(out)
	return nil
}

// progressInterval is the longest the demo's own builds stay silent.
const progressInterval = 20 * time.Second

// heartbeat prints what() every interval, with the time since it started,
// until the returned stop is called.
func heartbeat(out io.Writer, interval time.Duration, what func() string) (stop func()) {
	began := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(out, "    [%s] still at %s\n", time.Since(began).Round(time.Second), what())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// engineAddrs returns the metrics and probe addresses: metrics and probe
// when both are given and free, else two free loopback ports.
func engineAddrs(metrics, probe string) (string, string, error) {
	if metrics != "" && probe != "" && free(metrics) && free(probe) {
		return metrics, probe, nil
	}
	ports, err := controlplane.FreePorts(2)
	if err != nil {
		return "", "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]), nil
}

func free(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func command(ctx context.Context, dir string, out io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return nil
}

func startEngine(dir, wre, logPath string, args ...string) (*exec.Cmd, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(wre, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	// The engine dies with the demo, even on a crash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start wre run: %w", err)
	}
	return cmd, nil
}

// applyFile creates every object of a (multi-document) YAML file.
func applyFile(ctx context.Context, dyn dynamic.Interface, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
		if obj.GetKind() != "CustomResourceDefinition" {
			return fmt.Errorf("%s: only CRDs are expected, found %s", path, obj.GetKind())
		}
		if _, err := dyn.Resource(gvr).Create(ctx, &obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

// waitServed waits until the API server serves the demo's custom resources.
func waitServed(ctx context.Context, dyn dynamic.Interface) error {
	for _, gvr := range []schema.GroupVersionResource{widgets, apps, modulestatus.GVR} {
		for {
			if _, err := dyn.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

var (
	widgets = schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "widgets"}
	apps    = schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "apps"}
)

func createSamples(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface) error {
	for i, desired := range []string{"blue", "green", "red"} {
		w := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
			"metadata": map[string]any{"name": fmt.Sprintf("widget-%d", i+1), "namespace": "demo"},
			"spec":     map[string]any{"desired": desired},
		}}
		if _, err := dyn.Resource(widgets).Namespace("demo").Create(ctx, w, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create widget: %w", err)
		}
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "shared-settings", Namespace: "demo", Annotations: map[string]string{"wre.dev/replicate-to": "team-a,team-b"}},
		Data:       map[string]string{"log-level": "info"},
	}
	if _, err := kube.CoreV1().ConfigMaps("demo").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create configmap: %w", err)
	}
	app := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "demo.wre.dev/v1", "kind": "App",
		"metadata": map[string]any{"name": "hello", "namespace": "demo"},
		"spec":     map[string]any{"image": "nginx:1.27", "replicas": int64(2), "port": int64(80)},
	}}
	if _, err := dyn.Resource(apps).Namespace("demo").Create(ctx, app, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create app: %w", err)
	}
	return nil
}

// waitReconciled polls until every sample shows its module's work, printing
// each result once.
func waitReconciled(ctx context.Context, out io.Writer, kube kubernetes.Interface, dyn dynamic.Interface) error {
	checks := []struct {
		what string
		done func() (string, bool)
	}{
		{"status-sync", func() (string, bool) {
			var out []string
			for i := 1; i <= 3; i++ {
				w, err := dyn.Resource(widgets).Namespace("demo").Get(ctx, fmt.Sprintf("widget-%d", i), metav1.GetOptions{})
				if err != nil {
					return "", false
				}
				desired, _, _ := unstructured.NestedString(w.Object, "spec", "desired")
				current, _, _ := unstructured.NestedString(w.Object, "status", "current")
				if current != desired {
					return "", false
				}
				out = append(out, fmt.Sprintf("%s status.current=%s", w.GetName(), current))
			}
			return strings.Join(out, ", "), true
		}},
		{"configmap-replicator", func() (string, bool) {
			var out []string
			for _, ns := range []string{"team-a", "team-b"} {
				c, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "shared-settings", metav1.GetOptions{})
				if err != nil || c.Data["log-level"] != "info" {
					return "", false
				}
				out = append(out, ns+"/shared-settings")
			}
			return "demo/shared-settings copied to " + strings.Join(out, " and "), true
		}},
		{"app-operator", func() (string, bool) {
			d, err := kube.AppsV1().Deployments("demo").Get(ctx, "hello", metav1.GetOptions{})
			if err != nil {
				return "", false
			}
			s, err := kube.CoreV1().Services("demo").Get(ctx, "hello", metav1.GetOptions{})
			if err != nil {
				return "", false
			}
			return fmt.Sprintf("App demo/hello → Deployment %s (%d replicas, owned by the App) and Service %s (port %d)",
				d.Name, *d.Spec.Replicas, s.Name, s.Spec.Ports[0].Port), true
		}},
	}
	done := make([]bool, len(checks))
	for {
		remaining := 0
		for i, c := range checks {
			if done[i] {
				continue
			}
			if msg, ok := c.done(); ok {
				done[i] = true
				fmt.Fprintf(out, "    reconciled by %-21s %s\n", c.what+":", msg)
				continue
			}
			remaining++
		}
		if remaining == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var missing []string
			for i, c := range checks {
				if !done[i] {
					missing = append(missing, c.what)
				}
			}
			return fmt.Errorf("not reconciled in time by: %s (%w)", strings.Join(missing, ", "), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
