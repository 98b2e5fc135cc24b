package main

import (
	"context"
	"fmt"
)

func init() {
	register(Suite{Name: "queue", Title: "Work queue against client-go's workqueue", Run: runQueue})
}

// runQueue compares Add/Get/Done throughput of wre's priority queue (three
// priorities in use) with client-go's workqueue, on one goroutine and with
// 8 workers, with and without metrics. Target: ≥ 1.0× client-go's throughput.
func runQueue(ctx context.Context, env *Env) (*Section, error) {
	g := GoBench{Package: "./engine/queue/", Pattern: "AddGetDone|Workers", Benchtime: "200000x", Rounds: 5}
	results, err := g.Run(ctx, env)
	if err != nil {
		return nil, err
	}
	t := Table{
		Caption: "Throughput of wre's queue (three priorities in use) relative to client-go's plain queue; higher is better, target ≥ 1.00×. CPU per item is the process CPU time divided by items: on a loaded machine wall time also counts the time other processes held the cores, so the CPU ratio is the steadier one.",
		Header:  []string{"benchmark", "metrics", "client-go wall/item", "wre wall/item", "throughput (wall)", "client-go CPU/item", "wre CPU/item", "throughput (CPU)", "wre allocs/item"},
	}
	for _, bench := range []string{"AddGetDone", "Workers"} {
		for _, metrics := range []string{"off", "on"} {
			prefix := bench + "/metrics=" + metrics + "/target="
			base, err := Find(results, prefix+"client-go")
			if err != nil {
				return nil, err
			}
			ours, err := Find(results, prefix+"wre")
			if err != nil {
				return nil, err
			}
			label := map[string]string{"AddGetDone": "1 goroutine", "Workers": "8 workers"}[bench]
			t.Rows = append(t.Rows, []string{label, metrics,
				Duration(base.Values["sec/op"]), Duration(ours.Values["sec/op"]),
				Ratio(base.Values["sec/op"], ours.Values["sec/op"]),
				Duration(base.Values["cpu-sec/op"]), Duration(ours.Values["cpu-sec/op"]),
				Ratio(base.Values["cpu-sec/op"], ours.Values["cpu-sec/op"]),
				fmt.Sprintf("%.0f", ours.Values["allocs/op"]),
			})
		}
	}
	return &Section{Commands: []string{g.Command()}, Tables: []Table{t}}, nil
}
