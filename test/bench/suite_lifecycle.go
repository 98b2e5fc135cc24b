package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/registry"
)

func init() {
	register(Suite{Name: "lifecycle", Title: "Module lifecycle: compile, instantiate, hot reload", Run: runLifecycle})
}

// runLifecycle measures compiling and instantiating status-sync in process,
// and the hot-reload latency of a running engine: from the new version's
// ConfigMaps applied to the engine serving it.
func runLifecycle(ctx context.Context, env *Env) (*Section, error) {
	g := GoBench{Package: "./modules/", Pattern: "^BenchmarkLifecycle$", Benchtime: "5x"}
	results, err := g.Run(ctx, env)
	if err != nil {
		return nil, err
	}
	warm, err := Find(results, "Lifecycle/compile=warm")
	if err != nil {
		return nil, err
	}
	cold, err := Find(results, "Lifecycle/compile=cold")
	if err != nil {
		return nil, err
	}
	inst, err := Find(results, "Lifecycle/instantiate")
	if err != nil {
		return nil, err
	}
	load := Table{
		Caption: "status-sync (13.9 MB of wasm) in process: compiling in a new runtime with an empty and with a warm on-disk compilation cache, and starting one instance (create, `_initialize`, a first reconcile, close).",
		Header:  []string{"step", "time", "vs compile from warm cache", "linear memory"},
		Rows: [][]string{
			{"compile, cold cache", Duration(cold.Values["sec/op"]), Ratio(cold.Values["sec/op"], warm.Values["sec/op"]), ""},
			{"compile, warm cache", Duration(warm.Values["sec/op"]), "1.00×", ""},
			{"instantiate", Duration(inst.Values["sec/op"]), Ratio(inst.Values["sec/op"], warm.Values["sec/op"]), fmt.Sprintf("%.0f MiB", inst.Values["MiB/instance"])},
		},
	}
	reload, err := measureReloads(ctx, env)
	if err != nil {
		return nil, err
	}
	return &Section{
		Commands: []string{g.Command(), "go run ./test/bench -only lifecycle  # the hot reloads, against bin/wre on the local control plane"},
		Tables:   []Table{load, reload},
	}, nil
}

// reloadRounds is how many cold and warm reloads are measured.
const reloadRounds = 3

// measureReloads runs an engine with a module namespace and a compilation
// cache directory, ships status-sync, then alternates new versions (a new
// digest: cold cache) and the first one again (warm cache), timing each from
// its ConfigMaps applied to /modules reporting its digest Loaded.
func measureReloads(ctx context.Context, env *Env) (Table, error) {
	cp, kube, err := env.widgetCluster(ctx)
	if err != nil {
		return Table{}, err
	}
	ns, cleanup, err := Namespace(ctx, kube, "bench-reload")
	if err != nil {
		return Table{}, err
	}
	defer func() { _ = cleanup() }()
	cacheDir, err := os.MkdirTemp("", "wre-bench-reload-")
	if err != nil {
		return Table{}, err
	}
	defer os.RemoveAll(cacheDir)
	eng, addr, err := env.StartEngine(ctx, cp, "reload", "--module-namespace", ns, "--cache-dir", filepath.Join(cacheDir, "compiled"))
	if err != nil {
		return Table{}, err
	}
	defer func() { _ = eng.Stop(30 * time.Second) }()
	wasm, err := env.moduleWasm(ctx, "status-sync")
	if err != nil {
		return Table{}, err
	}
	raw, err := os.ReadFile(filepath.Join(env.Root, "modules", "status-sync", "module.yaml"))
	if err != nil {
		return Table{}, err
	}
	m, err := modules.ParseManifest(raw)
	if err != nil {
		return Table{}, err
	}
	parts := 0
	ship := func(version []byte) (time.Duration, error) {
		start := time.Now()
		if parts, err = applyVersion(ctx, kube, ns, m, version); err != nil {
			return 0, err
		}
		if err := waitServing(ctx, addr, m.Name, modules.Digest(version)); err != nil {
			return 0, fmt.Errorf("%w; engine log:\n%s", err, eng.LogTail(20))
		}
		return time.Since(start), nil
	}
	first, err := ship(wasm)
	if err != nil {
		return Table{}, err
	}
	var colds, warms []float64
	for i := range reloadRounds {
		d, err := ship(withCustomSection(wasm, fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)))
		if err != nil {
			return Table{}, err
		}
		colds = append(colds, d.Seconds())
		if d, err = ship(wasm); err != nil {
			return Table{}, err
		}
		warms = append(warms, d.Seconds())
	}
	coldS, warmS := Summarize(colds), Summarize(warms)
	return Table{
		Caption: fmt.Sprintf("Hot reload of status-sync in a running `bin/wre run`: from its ConfigMaps applied (zstd, %d parts) to /modules reporting the new digest Loaded, i.e. serving. A new digest compiles (cold cache); going back to a version compiled before loads from the on-disk cache (warm). %d rounds each; median (min–max).", parts, reloadRounds),
		Header:  []string{"reload", "time", "vs warm reload"},
		Rows: [][]string{
			{"first load (cold cache)", Duration(first.Seconds()), Ratio(first.Seconds(), warmS.Median)},
			{"new version (cold cache)", coldS.Format(Duration), Ratio(coldS.Median, warmS.Median)},
			{"earlier version (warm cache)", warmS.Format(Duration), "1.00×"},
		},
	}, nil
}

// withCustomSection returns wasm plus a custom section holding payload: the
// same code under a new digest.
func withCustomSection(wasm []byte, payload string) []byte {
	body := append([]byte{byte(len("bench"))}, "bench"...)
	body = append(body, payload...)
	out := append([]byte{}, wasm...)
	return append(append(out, 0, byte(len(body))), body...)
}

// applyVersion packages wasm with m and creates or replaces its ConfigMaps
// in namespace, part 0 last, as `wre package --apply` does; it returns how
// many ConfigMaps hold the version.
func applyVersion(ctx context.Context, kube kubernetes.Interface, namespace string, m *modules.Manifest, wasm []byte) (int, error) {
	cms, err := modules.Package(m, wasm, modules.PackageOptions{Namespace: namespace, Level: zstd.SpeedFastest})
	if err != nil {
		return 0, err
	}
	client := kube.CoreV1().ConfigMaps(namespace)
	for _, cm := range append(cms[1:], cms[0]) {
		cur, err := client.Get(ctx, cm.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = client.Create(ctx, cm, metav1.CreateOptions{})
		case err == nil:
			cm.ResourceVersion = cur.ResourceVersion
			_, err = client.Update(ctx, cm, metav1.UpdateOptions{})
		}
		if err != nil {
			return 0, fmt.Errorf("apply %s: %w", cm.Name, err)
		}
	}
	return len(cms), nil
}

// waitServing polls /modules until module runs digest.
func waitServing(ctx context.Context, metricsAddr, module, digest string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		st, err := ModuleStatuses(ctx, metricsAddr)
		if err != nil {
			return false, nil //nolint:nilerr // not serving yet
		}
		for _, s := range st {
			if s.Name == module && s.Digest == digest && s.State == registry.StateLoaded {
				return true, nil
			}
		}
		return false, nil
	})
}
