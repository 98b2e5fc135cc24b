package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/test/controlplane"
)

func init() {
	register(Suite{Name: "memory", Title: "Memory: modules in one engine against separate controller processes", Run: runMemory})
}

const (
	// memoryConfigMaps is how many ConfigMaps every controller watches.
	memoryConfigMaps = 5000
	// memoryProcesses is the number of plain controller processes.
	memoryProcesses = 10
	// memorySettle is how long memory is left to settle (GC, scavenger)
	// before an idle reading.
	memorySettle = 10 * time.Second
	// memoryBusy is how long ConfigMaps are touched for a busy reading;
	// memory is sampled every memorySample meanwhile and the peak reported.
	memoryBusy, memorySample = 20 * time.Second, 250 * time.Millisecond
	// memoryTouchRate is the ConfigMap updates per second while busy.
	memoryTouchRate = 100
)

// memoryModuleCounts are the engine configurations measured.
var memoryModuleCounts = []int{1, 10, 50}

// memoryReading is the memory of one configuration.
type memoryReading struct {
	label     string
	processes int
	// engine is set for readings of the engine (one process).
	engine bool
	// instancesIdle and instancesBusy count the engine's wasm instances
	// after the idle and the busy reading.
	instancesIdle, instancesBusy int
	idle, busy                   Memory
	// heapIdle is the engine's go_memstats_heap_inuse_bytes at the idle
	// reading: the Go heap (informer caches, queues, the wasm instances'
	// linear memory).
	heapIdle int64
	// heapFree is go_memstats_heap_idle_bytes − go_memstats_heap_released_bytes
	// at the idle reading: free heap the Go runtime has not returned to the
	// OS yet. The rest of the RSS, beyond heapIdle and heapFree, is the
	// compiled wasm code (mapped outside the Go heap), the binary, stacks
	// and the runtime's own structures.
	heapFree int64
	// guestIdle is the engine's wre_guest_memory_bytes at the idle reading:
	// the linear memory of every wasm instance (part of the Go heap).
	guestIdle int64
}

// runMemory measures resident memory (RSS and PSS from /proc) of
//   - 10 plaincontroller processes, each with its own informer on all
//     ConfigMaps: once with the 5,000 ConfigMaps alone, once with the
//     ConfigMaps of 10 shipped modules as well (what the 10-module engine
//     sees), and
//   - one `bin/wre run` with 1, 10 and 50 copies of the configmap-replicator
//     module, each copy a module of its own (own name, controller, queue,
//     instances) watching all ConfigMaps through the engine's shared informer,
//
// with 5,000 small ConfigMaps in the cluster: idle after everything was
// listed and reconciled once, and at the peak while 100 ConfigMaps a second
// are updated (every controller reconciles each update). Each setup runs
// alone, and the module ConfigMaps of one are deleted before the next.
func runMemory(ctx context.Context, env *Env) (*Section, error) {
	cp, err := env.ControlPlane(ctx)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(fastClient(cp))
	if err != nil {
		return nil, err
	}
	ns, deleteNS, err := Namespace(ctx, kube, "bench-memory")
	if err != nil {
		return nil, err
	}
	defer func() { _ = deleteNS() }()
	fmt.Fprintf(env.Log, "bench: memory: creating %d ConfigMaps\n", memoryConfigMaps)
	err = parallel(ctx, memoryConfigMaps, 32, func(ctx context.Context, i int) error {
		_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, benchConfigMap(ns, i), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	busy := func(ctx context.Context) error { return touchConfigMaps(ctx, kube, ns) }

	base, err := measurePlainControllers(ctx, env, cp, fmt.Sprintf("%d plain client-go controllers", memoryProcesses), busy)
	if err != nil {
		return nil, err
	}
	// The engine's ConfigMap informer also holds the modules' own
	// ConfigMaps; a second baseline sees exactly what the 10-module engine
	// sees: the same copies shipped, but no engine to load them.
	same, err := withReplicators(ctx, env, kube, 10, func(string) (memoryReading, error) {
		return measurePlainControllers(ctx, env, cp, fmt.Sprintf("%d plain client-go controllers + the 10 modules' ConfigMaps", memoryProcesses), busy)
	})
	if err != nil {
		return nil, err
	}
	readings := []memoryReading{base, same}
	engines := map[int]memoryReading{}
	for _, n := range memoryModuleCounts {
		r, err := withReplicators(ctx, env, kube, n, func(modNS string) (memoryReading, error) {
			return measureEngine(ctx, env, cp, modNS, n, busy)
		})
		if err != nil {
			return nil, err
		}
		readings = append(readings, r)
		engines[n] = r
	}

	t := Table{
		Caption: fmt.Sprintf("Resident memory with %d ConfigMaps in the cluster (RSS counts shared pages in every process, PSS divides them among the sharers; sums over processes). Idle: after the initial list and reconciles, %s settled. Busy: peak while %d ConfigMaps/s are updated for %s.",
			memoryConfigMaps, memorySettle, memoryTouchRate, memoryBusy),
		Header: []string{"setup", "processes", "wasm instances idle → busy", "idle RSS", "idle PSS", "busy RSS (peak)", "busy PSS (peak)"},
	}
	for _, r := range readings {
		inst := "-"
		if r.engine {
			inst = fmt.Sprintf("%d → %d", r.instancesIdle, r.instancesBusy)
		}
		t.Rows = append(t.Rows, []string{r.label, fmt.Sprint(r.processes), inst, MiB(r.idle.RSS), MiB(r.idle.PSS), MiB(r.busy.RSS), MiB(r.busy.PSS)})
	}
	one, ten, fifty := engines[1], engines[10], engines[50]
	split := Table{
		Caption: "Where the engine's idle RSS goes, from its /metrics: the wasm instances' linear memory (wre_guest_memory_bytes; Go byte slices, so in the Go heap), the rest of the Go heap in use (go_memstats_heap_inuse_bytes minus that: informer caches, queues, host and wazero state), and the rest of the RSS: free heap the Go runtime has not returned to the OS (at most go_memstats_heap_idle_bytes − go_memstats_heap_released_bytes, not all of it resident), compiled wasm code, the binary, stacks.",
		Header:  []string{"modules", "guest linear memory", "per instance", "other Go heap in use", "rest of RSS", "of which free heap, at most"},
	}
	for _, n := range memoryModuleCounts {
		r := engines[n]
		split.Rows = append(split.Rows, []string{fmt.Sprint(n), MiB(r.guestIdle), perInstance(r), MiB(r.heapIdle - r.guestIdle), MiB(r.idle.RSS - r.heapIdle), MiB(r.heapFree)})
	}
	ratios := Table{
		Caption: "Ratios and per-unit figures (idle unless stated).",
		Header:  []string{"figure", "value"},
		Rows: [][]string{
			{"engine with 10 modules / 10 processes seeing the same ConfigMaps, RSS", Ratio(float64(ten.idle.RSS), float64(same.idle.RSS))},
			{"engine with 10 modules / 10 processes seeing the same ConfigMaps, PSS", Ratio(float64(ten.idle.PSS), float64(same.idle.PSS))},
			{"engine with 10 modules / 10 processes seeing the same ConfigMaps, busy RSS", Ratio(float64(ten.busy.RSS), float64(same.busy.RSS))},
			{"engine with 10 modules / 10 processes seeing only the 5,000 ConfigMaps, RSS", Ratio(float64(ten.idle.RSS), float64(base.idle.RSS))},
			{"one plain controller process (RSS / 10, 5,000 ConfigMaps)", MiB(base.idle.RSS / memoryProcesses)},
			{"each idle module from 1 to 10 ((RSS 10 − RSS 1) / 9)", MiB((ten.idle.RSS - one.idle.RSS) / 9)},
			{"each idle module from 10 to 50 ((RSS 50 − RSS 10) / 40)", MiB((fifty.idle.RSS - ten.idle.RSS) / 40)},
			{"of which guest linear memory, 1 to 10 / 10 to 50", fmt.Sprintf("%s / %s", MiB((ten.guestIdle-one.guestIdle)/9), MiB((fifty.guestIdle-ten.guestIdle)/40))},
			{"of which other Go heap in use, 1 to 10 / 10 to 50", fmt.Sprintf("%s / %s", MiB((ten.heapIdle-ten.guestIdle-one.heapIdle+one.guestIdle)/9), MiB((fifty.heapIdle-fifty.guestIdle-ten.heapIdle+ten.guestIdle)/40))},
		},
	}
	ratio := float64(ten.idle.RSS) / float64(same.idle.RSS)
	verdict := "met"
	if ratio > 0.25 {
		verdict = "missed"
	}
	guestPerModule := float64(ten.guestIdle) / 10
	// Whether the instances alone exceed the target, whatever the rest of
	// the engine weighed.
	instancesAlone := "the instances alone are within the target, so the rest of the engine decides"
	if float64(ten.guestIdle) > 0.25*float64(same.idle.RSS) {
		instancesAlone = "the 25% target cannot be met with Go-built guests at this concurrency whatever the host does; fewer instances per idle module (releasing idle instances) or smaller guests (TinyGo, Rust) would have to change"
	}
	return &Section{
		Commands: []string{"make controlplane image-binary", "go run ./test/bench -only memory"},
		Tables:   []Table{t, split, ratios},
		Notes: []string{
			fmt.Sprintf("Target (issue #7): 10 modules in one engine use ≤ 25%% of the memory of 10 separate controller processes. Measured %.0f%% (idle RSS against the 10 processes seeing the same ConfigMaps; %.0f%% by PSS; %.0f%% against processes seeing only the 5,000 ConfigMaps): %s.",
				100*ratio, 100*float64(ten.idle.PSS)/float64(same.idle.PSS), 100*float64(ten.idle.RSS)/float64(base.idle.RSS), verdict),
			fmt.Sprintf("What grows with the modules (1 to 10): each module adds %s of RSS, of which %s of wasm linear memory and %s of other Go heap in use. The linear memory is the guests': every instance of a Go-built guest carries its own Go runtime, heap and k8s.io/api scheme (%s / %s / %s per instance with 1 / 10 / 50 modules), and a module keeps as many instances as its concurrency (2 for configmap-replicator) — %.0f%% of a whole plain controller process (%s) per module. With 10 modules the instances alone are %.0f%% of the 10 processes' RSS: %s. The other Go heap in use includes garbage the next GC has not swept yet, so it moves between runs; what else it holds (per-module host and wazero state, decoded objects) /metrics cannot tell, and the engine exposes no pprof endpoint, so no heap profile was taken. The module ConfigMaps also count: the engine's ConfigMap informer is cluster-wide, so it caches the modules' own ConfigMaps (≈ 0.8 MB of compressed wasm per part) beside the module registry's informer; the second baseline row shows what caching them costs plain processes. Last, the Go runtime's heap goal: with the default GOGC=100 the engine lets its heap grow to about twice what is live before collecting, and linear memory counts as live heap; a GOMEMLIMIT on the engine would bound that, the plain processes have the same policy but small heaps.",
				MiB((ten.idle.RSS-one.idle.RSS)/9), MiB((ten.guestIdle-one.guestIdle)/9), MiB((ten.heapIdle-ten.guestIdle-one.heapIdle+one.guestIdle)/9),
				perInstance(one), perInstance(ten), perInstance(fifty),
				100*guestPerModule/float64(base.idle.RSS/memoryProcesses), MiB(base.idle.RSS/memoryProcesses),
				100*float64(ten.guestIdle)/float64(same.idle.RSS), instancesAlone),
			"The plain controller (test/bench/cmd/plaincontroller) is a client-go shared informer on all ConfigMaps, a rate-limited work queue and two workers whose reconcile reads the ConfigMap from its cache. The engine's modules are copies of configmap-replicator shipped under distinct names (module name = controller name, metrics label and field manager), with its manifest's concurrency 2; the copies have the same digest, so the engine compiles the wasm once and all copies share the compiled code — distinct modules would each add theirs.",
		},
	}, nil
}

// perInstance is the guest linear memory of r per wasm instance.
func perInstance(r memoryReading) string {
	if r.instancesIdle == 0 {
		return "n/a"
	}
	return MiB(r.guestIdle / int64(r.instancesIdle))
}

// withReplicators ships n copies of configmap-replicator (replicator-00 …)
// into a fresh namespace, calls fn with it and deletes the namespace
// afterwards (waiting until it is gone), so that what runs next does not
// see these ConfigMaps.
func withReplicators(ctx context.Context, env *Env, kube kubernetes.Interface, n int, fn func(ns string) (memoryReading, error)) (r memoryReading, err error) {
	ns, deleteNS, err := Namespace(ctx, kube, "bench-memory-modules")
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, deleteNS()) }()
	for i := range n {
		if err := env.ShipModule(ctx, kube, ns, "configmap-replicator", fmt.Sprintf("replicator-%02d", i), nil); err != nil {
			return r, err
		}
	}
	return fn(ns)
}

// benchConfigMap is ConfigMap i of the memory benchmark: three small keys,
// about 300 bytes of data.
func benchConfigMap(ns string, i int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cm-%05d", i), Labels: map[string]string{"app": "bench"}},
		Data: map[string]string{
			"index":  fmt.Sprint(i),
			"config": strings.Repeat("x", 200),
			"owner":  "memory-benchmark",
		},
	}
}

// touchConfigMaps updates an annotation of the benchmark's ConfigMaps, one
// after the other, at memoryTouchRate per second until ctx ends.
func touchConfigMaps(ctx context.Context, kube kubernetes.Interface, ns string) error {
	tick := time.NewTicker(time.Second / memoryTouchRate)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// The update itself does not end with ctx: a client near ctx's
		// deadline fails before sending, which is no error of the cluster.
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"bench.wre.dev/touched":"%d"}}}`, i)
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		_, err := kube.CoreV1().ConfigMaps(ns).Patch(callCtx, fmt.Sprintf("cm-%05d", i%memoryConfigMaps), "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
		cancel()
		if err != nil {
			return err
		}
	}
}

// measureIdle reads the memory of pids after memorySettle.
func measureIdle(ctx context.Context, pids []int) (Memory, error) {
	select {
	case <-ctx.Done():
		return Memory{}, context.Cause(ctx)
	case <-time.After(memorySettle):
	}
	return ReadMemorySum(pids)
}

// measureBusy samples the memory of pids every memorySample while busy runs
// for memoryBusy and returns the peak sums.
func measureBusy(ctx context.Context, pids []int, busy func(context.Context) error) (peak Memory, err error) {
	busyCtx, cancel := context.WithTimeout(ctx, memoryBusy)
	defer cancel()
	busyErr := make(chan error, 1)
	go func() { busyErr <- busy(busyCtx) }()
	tick := time.NewTicker(memorySample)
	defer tick.Stop()
	for busyCtx.Err() == nil {
		m, err := ReadMemorySum(pids)
		if err != nil {
			cancel()
			return peak, errors.Join(err, <-busyErr)
		}
		peak.RSS, peak.PSS = max(peak.RSS, m.RSS), max(peak.PSS, m.PSS)
		select {
		case <-busyCtx.Done():
		case <-tick.C:
		}
	}
	return peak, <-busyErr
}

// measurePlainControllers builds plaincontroller, starts memoryProcesses of
// them, waits until each has synced its cache and measures them.
func measurePlainControllers(ctx context.Context, env *Env, cp *controlplane.ControlPlane, label string, busy func(context.Context) error) (memoryReading, error) {
	r := memoryReading{label: label, processes: memoryProcesses}
	dir, err := os.MkdirTemp("", "wre-bench-plaincontroller-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "plaincontroller")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./test/bench/cmd/plaincontroller")
	build.Dir = env.Root
	if out, err := build.CombinedOutput(); err != nil {
		return r, fmt.Errorf("build plaincontroller: %w\n%s", err, out)
	}
	var pids []int
	var synced []chan error
	for i := range memoryProcesses {
		cmd := exec.Command(bin, "--kubeconfig", cp.KubeconfigPath())
		cmd.Stderr = env.Log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return r, err
		}
		if err := cmd.Start(); err != nil {
			return r, fmt.Errorf("start plaincontroller %d: %w", i, err)
		}
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}()
		pids = append(pids, cmd.Process.Pid)
		ch := make(chan error, 1)
		synced = append(synced, ch)
		go func() {
			s := bufio.NewScanner(stdout)
			for s.Scan() {
				if strings.HasPrefix(s.Text(), "synced ") {
					ch <- nil
					return
				}
			}
			ch <- errors.New("plaincontroller exited before its cache synced")
		}()
	}
	for i, ch := range synced {
		select {
		case err := <-ch:
			if err != nil {
				return r, fmt.Errorf("plaincontroller %d: %w", i, err)
			}
		case <-time.After(5 * time.Minute):
			return r, fmt.Errorf("plaincontroller %d: cache not synced after 5 minutes", i)
		}
	}
	fmt.Fprintf(env.Log, "bench: memory: %d plain controllers synced\n", memoryProcesses)
	if r.idle, err = measureIdle(ctx, pids); err != nil {
		return r, err
	}
	r.busy, err = measureBusy(ctx, pids, busy)
	return r, err
}

// measureEngine starts one engine loading the n modules shipped in modNS,
// waits until all are loaded and their initial reconciles are done, and
// measures it.
func measureEngine(ctx context.Context, env *Env, cp *controlplane.ControlPlane, modNS string, n int, busy func(context.Context) error) (r memoryReading, err error) {
	r = memoryReading{label: fmt.Sprintf("engine, %d module(s)", n), processes: 1, engine: true}
	cacheDir, err := os.MkdirTemp("", "wre-bench-cache-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(cacheDir)
	eng, addr, err := env.StartEngine(ctx, cp, fmt.Sprintf("memory-%d", n), "--module-namespace", modNS, "--cache-dir", cacheDir)
	if err != nil {
		return r, err
	}
	defer func() {
		err = errors.Join(err, eng.Stop(time.Minute))
		if err != nil {
			err = fmt.Errorf("engine with %d modules: %w\nlog ends:\n%s", n, err, eng.LogTail(20))
		}
	}()
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if _, err := WaitModules(waitCtx, addr, n); err != nil {
		return r, err
	}
	reconciles, err := WaitReconcilesSettle(waitCtx, addr, 5*time.Second)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(env.Log, "bench: memory: engine with %d modules loaded, %d reconciles\n", n, reconciles)
	pids := []int{eng.PID()}
	if r.idle, err = measureIdle(ctx, pids); err != nil {
		return r, err
	}
	if r.instancesIdle, err = instances(ctx, addr); err != nil {
		return r, err
	}
	heap, err := MetricSum(ctx, addr, "go_memstats_heap_inuse_bytes", nil)
	if err != nil {
		return r, err
	}
	r.heapIdle = int64(heap)
	idle, err := MetricSum(ctx, addr, "go_memstats_heap_idle_bytes", nil)
	if err != nil {
		return r, err
	}
	released, err := MetricSum(ctx, addr, "go_memstats_heap_released_bytes", nil)
	if err != nil {
		return r, err
	}
	r.heapFree = int64(idle - released)
	guest, err := MetricSum(ctx, addr, "wre_guest_memory_bytes", nil)
	if err != nil {
		return r, err
	}
	r.guestIdle = int64(guest)
	if r.busy, err = measureBusy(ctx, pids, busy); err != nil {
		return r, err
	}
	r.instancesBusy, err = instances(ctx, addr)
	fmt.Fprintf(env.Log, "bench: memory: engine with %d modules: idle %s, busy %s RSS\n", n, MiB(r.idle.RSS), MiB(r.busy.RSS))
	return r, err
}

// instances is the number of wasm instances of every module of the engine.
func instances(ctx context.Context, metricsAddr string) (int, error) {
	st, err := ModuleStatuses(ctx, metricsAddr)
	n := 0
	for _, s := range st {
		n += s.Instances
	}
	return n, err
}
