package main

import (
	"context"
	"fmt"
)

func init() {
	register(Suite{Name: "hostcalls", Title: "Host calls by operation and payload encoding", Run: runHostCalls})
}

// runHostCalls measures one reconcile of the getbench guest per operation,
// the cost of the host call alone (minus a reconcile without host call), the
// cost of encodings against each other, and guest compute against the same
// code natively.
func runHostCalls(ctx context.Context, env *Env) (*Section, error) {
	g := GoBench{Package: "./modules/", Pattern: "^Benchmark(HostCalls|GuestCompute)$", Benchtime: "200x", Rounds: 3}
	results, err := g.Run(ctx, env)
	if err != nil {
		return nil, err
	}
	cpu := func(name string) (float64, error) {
		r, err := Find(results, name)
		return r.Values["cpu-sec/op"], err
	}
	noop, err := cpu("HostCalls/op=noop")
	if err != nil {
		return nil, err
	}
	ops := Table{
		Caption: "One reconcile per operation, process CPU time. \"Call alone\" subtracts a reconcile without host call (op=noop). The Deployment has two containers with 20 environment variables each; the custom resource (Gizmo) has a similar spec; lists return 100 ConfigMaps. Reads come from the cache.",
		Header:  []string{"operation", "encoding", "CPU/reconcile", "call alone", "vs protobuf"},
	}
	rows := []struct{ label, enc, op, base string }{
		{"get Deployment (typed)", "protobuf", "get-protobuf", ""},
		{"get Deployment (unstructured)", "JSON", "get-json", "get-protobuf"},
		{"get custom resource (typed struct)", "JSON", "get-cr", "get-protobuf"},
		{"list 100 ConfigMaps (typed)", "protobuf", "list-protobuf", ""},
		{"list 100 ConfigMaps (unstructured)", "JSON", "list-json", "list-protobuf"},
		{"get + update Deployment (typed)", "protobuf", "update-protobuf", ""},
		{"get + update Deployment (unstructured)", "JSON", "update-json", "update-protobuf"},
	}
	for _, r := range rows {
		v, err := cpu("HostCalls/op=" + r.op)
		if err != nil {
			return nil, err
		}
		vs := "baseline"
		if r.base != "" {
			b, err := cpu("HostCalls/op=" + r.base)
			if err != nil {
				return nil, err
			}
			vs = Ratio(v-noop, b-noop)
		}
		ops.Rows = append(ops.Rows, []string{r.label, r.enc, Duration(v), Duration(v - noop), vs})
	}
	ops.Rows = append(ops.Rows, []string{"reconcile without host call", "-", Duration(noop), "-", "-"})

	v2 := Table{
		Caption: "ABI v2 (lean SDK, modules/testdata/getbench2): the same objects projected to the fields a typical reconciler reads, decoded by offset. \"Test cache\" is what the benchmark's fake cache costs per read natively (it converts each object from unstructured; the engine's informer cache returns stored objects), paid by both ABIs; \"ABI share\" subtracts it and the reconcile without host call.",
		Header:  []string{"operation", "v1 CPU/reconcile", "v2 CPU/reconcile", "v1/v2", "test cache", "v1 ABI share", "v2 ABI share", "ABI share v1/v2"},
	}
	noopV2, err := cpu("HostCalls/op=noop-v2")
	if err != nil {
		return nil, err
	}
	for _, r := range []struct{ label, v1, v2, cache string }{
		{"get Deployment", "get-protobuf", "get-v2", "cache-get-native"},
		{"get custom resource", "get-cr", "get-cr-v2", ""},
		{"list 100 ConfigMaps", "list-protobuf", "list-v2", "cache-list-native"},
		{"get + write Deployment (v1 update, v2 apply)", "update-protobuf", "apply-v2", "cache-get-native"},
	} {
		a, err := cpu("HostCalls/op=" + r.v1)
		if err != nil {
			return nil, err
		}
		b, err := cpu("HostCalls/op=" + r.v2)
		if err != nil {
			return nil, err
		}
		row := []string{r.label, Duration(a), Duration(b), Ratio(a, b)}
		if r.cache == "" {
			row = append(row, "-", Duration(a-noop), Duration(b-noopV2), Ratio(a-noop, b-noopV2))
		} else {
			c, err := cpu("HostCalls/op=" + r.cache)
			if err != nil {
				return nil, err
			}
			row = append(row, Duration(c), Duration(a-noop-c), Duration(b-noopV2-c), Ratio(a-noop-c, b-noopV2-c))
		}
		v2.Rows = append(v2.Rows, row)
	}
	v2.Rows = append(v2.Rows, []string{"reconcile without host call", Duration(noop), Duration(noopV2), Ratio(noopV2, noop), "-", "-", "-", "-"})

	compute := Table{
		Caption: "Guest compute: decoding the same Deployment ten times in the guest (one reconcile, no host call, minus a reconcile that does nothing) and natively in the host process, the same Go code; \"trusted\" runs the guest without wazero's loop checks (`wre run --trusted-guests`).",
		Header:  []string{"decode", "native CPU", "wasm CPU", "wasm vs native", "trusted CPU", "trusted vs native"},
	}
	for _, enc := range []string{"protobuf", "json"} {
		n, err := cpu("GuestCompute/decode=" + enc + "/impl=native")
		if err != nil {
			return nil, err
		}
		w, err := cpu("GuestCompute/decode=" + enc + "/impl=wasm")
		if err != nil {
			return nil, err
		}
		tr, err := cpu("GuestCompute/decode=" + enc + "/impl=wasm-trusted")
		if err != nil {
			return nil, err
		}
		compute.Rows = append(compute.Rows, []string{enc, Duration(n), Duration(w - noop), Ratio(w-noop, n), Duration(tr - noop), Ratio(tr-noop, n)})
	}
	return &Section{Commands: []string{g.Command()}, Tables: []Table{ops, v2, compute}, Notes: []string{
		fmt.Sprintf("Built-in types travel as Kubernetes protobuf (generated code, no reflection); custom resources as JSON. Guests run with wazero's loop checks on (the default, so a reconcile timeout stops a spinning guest); %s.", loopChecksNote),
	}}, nil
}

// loopChecksNote points to what the loop checks cost.
const loopChecksNote = "`go test -run '^$' -bench GetDeployment ./host/` measures them on and off"
