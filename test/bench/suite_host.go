package main

import (
	"context"
	"fmt"
)

func init() {
	register(Suite{Name: "host", Title: "Host: payload encoding, timeout mechanism, compile and instance costs", Run: runHost})
}

// runHost runs the ./host/ benchmarks behind the closing figures of issue #4:
// protobuf against JSON for getting a Deployment, the loop checks that let a
// reconcile timeout stop a spinning guest on and off, compiling cold and from
// the cache, and an instance's cost and linear memory.
func runHost(ctx context.Context, env *Env) (*Section, error) {
	get := GoBench{Package: "./host/", Pattern: "^BenchmarkGetDeployment$", Benchtime: "200x", Rounds: 3}
	spin := GoBench{Package: "./host/", Pattern: "^BenchmarkTimeoutMechanism$", Benchtime: "5x", Rounds: 3}
	load := GoBench{Package: "./host/", Pattern: "^Benchmark(Compile|Instance)$", Benchtime: "3x", Rounds: 2}
	var results []BenchResult
	for _, g := range []GoBench{get, spin, load} {
		r, err := g.Run(ctx, env)
		if err != nil {
			return nil, err
		}
		results = append(results, r...)
	}
	find := func(name string) (map[string]float64, error) {
		r, err := Find(results, name)
		return r.Values, err
	}

	encoding := Table{
		Caption: "One reconcile of the getdeploy guest: 10 gets of a cached Deployment (one container, labels, status), each decoded in the guest into `appsv1.Deployment` — protobuf with the generated `Unmarshal`, JSON with `encoding/json`. CPU is the process's; allocations are the host's (Go heap), not the guest's.",
		Header:  []string{"encoding", "loop checks", "CPU/reconcile", "CPU/get", "vs protobuf", "wall/reconcile", "host allocs/reconcile", "host B/reconcile"},
	}
	checks := Table{
		Caption: "The timeout mechanism: wazero's loop checks (close on context done), which let a reconcile timeout stop a guest spinning without host calls. A guest spinning 10M loop iterations, and the getdeploy reconcile above, with the checks on (the default) and off (`wre run --trusted-guests`).",
		Header:  []string{"workload", "checks on", "checks off", "on vs off", "per iteration"},
	}
	for _, enc := range []string{"protobuf", "json"} {
		for _, mode := range []string{"on", "off"} {
			v, err := find("GetDeployment/encoding=" + enc + "/closeOnContextDone=" + mode)
			if err != nil {
				return nil, err
			}
			base, err := find("GetDeployment/encoding=protobuf/closeOnContextDone=" + mode)
			if err != nil {
				return nil, err
			}
			vs := "baseline"
			if enc != "protobuf" {
				vs = Ratio(v["cpu-sec/op"], base["cpu-sec/op"])
			}
			encoding.Rows = append(encoding.Rows, []string{encodingName[enc], mode,
				Duration(v["cpu-sec/op"]), Duration(v["cpu-sec/op"] / 10), vs, Duration(v["sec/op"]),
				fmt.Sprintf("%.0f", v["allocs/op"]), fmt.Sprintf("%.0f", v["B/op"])})
		}
	}
	on, err := find("TimeoutMechanism/closeOnContextDone=on")
	if err != nil {
		return nil, err
	}
	off, err := find("TimeoutMechanism/closeOnContextDone=off")
	if err != nil {
		return nil, err
	}
	checks.Rows = append(checks.Rows, []string{"spin 10M iterations (wall)", Duration(on["sec/op"]), Duration(off["sec/op"]),
		Ratio(on["sec/op"], off["sec/op"]), Duration((on["sec/op"] - off["sec/op"]) / 10e6)})
	for _, enc := range []string{"protobuf", "json"} {
		on, err := find("GetDeployment/encoding=" + enc + "/closeOnContextDone=on")
		if err != nil {
			return nil, err
		}
		off, err := find("GetDeployment/encoding=" + enc + "/closeOnContextDone=off")
		if err != nil {
			return nil, err
		}
		checks.Rows = append(checks.Rows, []string{"get Deployment ×10, " + encodingName[enc] + " (CPU)", Duration(on["cpu-sec/op"]), Duration(off["cpu-sec/op"]),
			Ratio(on["cpu-sec/op"], off["cpu-sec/op"]), "-"})
	}

	cold, err := find("Compile/cache=cold")
	if err != nil {
		return nil, err
	}
	warm, err := find("Compile/cache=warm")
	if err != nil {
		return nil, err
	}
	inst, err := find("Instance")
	if err != nil {
		return nil, err
	}
	lifecycle := Table{
		Caption: "The script test guest (a standard-library Go reactor): compiling it in a new runtime with an empty and with a warm on-disk compilation cache, and one instance (create, `_initialize`, a reconcile, close) with the linear memory it holds.",
		Header:  []string{"step", "time", "vs compile from warm cache", "host B/op", "linear memory"},
		Rows: [][]string{
			{"compile, cold cache", Duration(cold["sec/op"]), Ratio(cold["sec/op"], warm["sec/op"]), MiB(int64(cold["B/op"])), ""},
			{"compile, warm cache", Duration(warm["sec/op"]), "1.00×", MiB(int64(warm["B/op"])), ""},
			{"instance", Duration(inst["sec/op"]), Ratio(inst["sec/op"], warm["sec/op"]), MiB(int64(inst["B/op"])), MiB(int64(inst["linear-bytes/instance"])) + " per instance"},
		},
	}
	return &Section{
		Commands: []string{get.Command(), spin.Command(), load.Command()},
		Tables:   []Table{encoding, checks, lifecycle},
		Notes: []string{
			"Linear memory never shrinks, so an instance keeps its peak until the pool recycles it (`MaxReconcilesPerInstance`, `IdleTimeout`); a module's memory is about its concurrency times the figure above, plus its own peak use. The lifecycle section measures the same for status-sync, an SDK module.",
		},
	}, nil
}

// encodingName is how the document names the encodings of BenchmarkGetDeployment.
var encodingName = map[string]string{"protobuf": "protobuf", "json": "JSON"}
