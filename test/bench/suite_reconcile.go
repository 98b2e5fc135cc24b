package main

import (
	"context"
	"fmt"
)

func init() {
	register(Suite{Name: "reconcile", Title: "Reconcile overhead: wasm modules against the same logic in native Go", Run: runReconcile})
}

// Targets of issue #8 for one reconcile: wasm (loop checks on) and trusted
// wasm against native CPU.
const (
	reconcileTarget        = 3.0
	reconcileTrustedTarget = 1.5
)

// runReconcile compares one reconcile of an in-sync object by the
// status-sync and configmap-replicator wasm modules with the same logic as
// native reconcilers, in one process on the same cached fake cluster.
func runReconcile(ctx context.Context, env *Env) (*Section, error) {
	g := GoBench{Package: "./modules/", Pattern: "^Benchmark(StatusSync|ConfigMapReplicator)$", Benchtime: "2000x", Rounds: 3}
	results, err := g.Run(ctx, env)
	if err != nil {
		return nil, err
	}
	t := Table{
		Caption: "One reconcile of an in-sync object (cached reads, no write), process CPU time per reconcile. Both modules use ABI v2 and the lean SDK: the object arrives with the reconcile request, projected to the fields the module declared. status-sync: no host call (the host reads the Widget from the cache and encodes its projection); configmap-replicator: the source with the request, get its two copies, list the copies by label. Native: status-sync is the engine's own reconciler (engine/native/statussync), configmap-replicator the same steady-state logic on the same cache. \"trusted\" runs the same wasm without wazero's loop checks (`wre run --trusted-guests`). Allocations are the host's (Go heap), not the guest's. Targets: wasm ≤ 3× native, trusted ≤ 1.5×.",
		Header:  []string{"module", "native CPU/op", "wasm CPU/op", "wasm vs native", "trusted CPU/op", "trusted vs native", "native wall/op", "wasm wall/op", "native allocs/op", "wasm host allocs/op", "target met"},
	}
	worst, worstTrusted := 0.0, 0.0
	for _, m := range []struct{ name, bench string }{{"status-sync", "StatusSync"}, {"configmap-replicator", "ConfigMapReplicator"}} {
		native, err := Find(results, m.bench+"/impl=native")
		if err != nil {
			return nil, err
		}
		wasm, err := Find(results, m.bench+"/impl=wasm")
		if err != nil {
			return nil, err
		}
		trusted, err := Find(results, m.bench+"/impl=wasm-trusted")
		if err != nil {
			return nil, err
		}
		cpuRatio := wasm.Values["cpu-sec/op"] / native.Values["cpu-sec/op"]
		worst = max(worst, cpuRatio)
		worstTrusted = max(worstTrusted, trusted.Values["cpu-sec/op"]/native.Values["cpu-sec/op"])
		t.Rows = append(t.Rows, []string{m.name,
			Duration(native.Values["cpu-sec/op"]), Duration(wasm.Values["cpu-sec/op"]), Ratio(wasm.Values["cpu-sec/op"], native.Values["cpu-sec/op"]),
			Duration(trusted.Values["cpu-sec/op"]), Ratio(trusted.Values["cpu-sec/op"], native.Values["cpu-sec/op"]),
			Duration(native.Values["sec/op"]), Duration(wasm.Values["sec/op"]),
			fmt.Sprintf("%.0f", native.Values["allocs/op"]), fmt.Sprintf("%.0f", wasm.Values["allocs/op"]),
			yesNo(cpuRatio <= reconcileTarget && trusted.Values["cpu-sec/op"]/native.Values["cpu-sec/op"] <= reconcileTrustedTarget)})
	}
	return &Section{Commands: []string{g.Command()}, Tables: []Table{t}, Notes: []string{
		fmt.Sprintf("Largest CPU ratio: %.1f× with loop checks (target %.0f×: %s), %.1f× as trusted guests (target %.1f×: %s).",
			worst, reconcileTarget, metOrMissed(worst <= reconcileTarget), worstTrusted, reconcileTrustedTarget, metOrMissed(worstTrusted <= reconcileTrustedTarget)),
		reconcileFindings,
	}}, nil
}

// reconcileFindings is what profiling the gap showed; the figures it cites
// are in this document's host section and in host/RATIONALE.md.
const reconcileFindings = `Where the time goes (ABI v2). Before v2 the guest's
work dominated: reflective JSON and protobuf decoding of whole objects, a
runtime.Scheme, and a re-entrant wre_alloc per message (status-sync was 124×
native, configmap-replicator 23×). With v2 an in-sync status-sync reconcile
is one guest entry that decodes a flat record by offset and allocates
nothing in the guest, so what is left is mostly fixed cost. A CPU profile of
` + "`go test -run '^$' -bench '^BenchmarkStatusSync$/impl=wasm$' -benchtime 300000x -cpuprofile cpu.prof ./modules/`" + `
(2026-12-06, busy machine; shares of one ~9.5 µs reconcile): the test
cache's read of the Widget, 40 % (client-go's fake tracker deep-copies the
object; native pays the same read, and it is most of native's time); the
guest entry, 24 % (wazero's call including the goroutine it starts to watch
the context when loop checks are on, about 0.7 µs, and the guest's own decode,
compare and result encode, about 1.5 µs); the reconcile context's timeout,
7 % (a runtime timer per reconcile); the instance pool, 5 %; the projection
encode, 5 %; the reconcile ID, events of the reconcile and metrics, the rest.
The host's floor without the cache read is measured by
` + "`go test -run '^$' -bench ReconcileV2Floor ./host/`" + ` (guest=raw: about
3 µs; guest=go adds what Go charges to enter a wasmexport function, about
0.5 µs). That floor alone is larger than the whole native reconcile minus its
cache read, so status-sync cannot reach 3× by guest work: what would remove
the rest is a reusable per-instance deadline instead of a timer per reconcile
(about 0.7 µs), a reconcile ID without crypto/rand (about 0.2 µs), and a
wazero that checks a flag at loop headers without starting a watcher
goroutine per call (about 0.7 µs; it needs a change to wazero, see
host/RATIONALE.md). Together about 1.6 µs: still short of 3×.
configmap-replicator does real work per reconcile (three reads and a list)
and is closer. Trusted guests (no loop checks) gain little here: the host
then runs each reconcile on a goroutine of its own with a hard deadline,
whose start and stack growth cost about what the checks save on such short
guest code.`

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
