package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// GoBench is a `go test -bench` run.
type GoBench struct {
	// Dir is the module directory relative to the repository root ("" for
	// the root module).
	Dir string
	// Package is the package pattern, e.g. "./modules/".
	Package string
	// Pattern is the -bench regular expression.
	Pattern string
	// Benchtime is -benchtime (default 1s).
	Benchtime string
	// Rounds is how many times the whole command runs (default 1); results
	// are averaged. Rounds of -count 1, rather than one run of -count N,
	// interleave the benchmarks being compared, so a burst of load on a
	// shared machine does not hit one side of a ratio only.
	Rounds int
}

// Command is the shell command that reproduces the run.
func (g GoBench) Command() string {
	var b strings.Builder
	if g.Dir != "" {
		fmt.Fprintf(&b, "(cd %s && ", g.Dir)
	}
	fmt.Fprintf(&b, "go test -run '^$' -bench '%s' -benchmem", g.Pattern)
	if g.Benchtime != "" {
		fmt.Fprintf(&b, " -benchtime %s", g.Benchtime)
	}
	b.WriteString(" " + g.Package)
	if g.Dir != "" {
		b.WriteString(")")
	}
	if g.Rounds > 1 {
		fmt.Fprintf(&b, "  # %d rounds, averaged", g.Rounds)
	}
	return b.String()
}

// BenchResult is one benchmark's measurements, averaged over -count runs.
type BenchResult struct {
	// Name is the full name without the -GOMAXPROCS suffix, e.g.
	// "StatusSync/impl=wasm".
	Name string
	// Values maps a unit to its mean. benchfmt normalises units: ns/op is
	// "sec/op" in seconds, a custom cpu-ns/op is "cpu-sec/op"; "B/op" and
	// "allocs/op" stay.
	Values map[string]float64
}

// Run runs the benchmarks and returns their results in output order.
func (g GoBench) Run(ctx context.Context, env *Env) ([]BenchResult, error) {
	args := []string{"test", "-run", "^$", "-bench", g.Pattern, "-benchmem"}
	if g.Benchtime != "" {
		args = append(args, "-benchtime", g.Benchtime)
	}
	args = append(args, g.Package)
	var out bytes.Buffer
	for round := range max(g.Rounds, 1) {
		fmt.Fprintf(env.Log, "bench: round %d: %s\n", round+1, g.Command())
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = env.Root
		if g.Dir != "" {
			cmd.Dir = env.Root + "/" + g.Dir
		}
		var roundOut bytes.Buffer
		cmd.Stdout = &roundOut
		cmd.Stderr = env.Log
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", g.Command(), err, roundOut.String())
		}
		out.Write(roundOut.Bytes())
	}
	return parseBench(out.Bytes())
}

// parseBench averages the results of the Go benchmark format by name.
func parseBench(out []byte) ([]BenchResult, error) {
	r := benchfmt.NewReader(bytes.NewReader(out), "go test")
	type acc struct {
		sum map[string]float64
		n   map[string]int
	}
	byName := map[string]*acc{}
	var order []string
	for r.Scan() {
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			continue // syntax errors and unit metadata
		}
		base, parts := res.Name.Parts()
		name := strings.TrimPrefix(string(base), "Benchmark")
		for _, p := range parts {
			if bytes.HasPrefix(p, []byte("-")) { // -GOMAXPROCS
				continue
			}
			name += string(p)
		}
		a, ok := byName[name]
		if !ok {
			a = &acc{sum: map[string]float64{}, n: map[string]int{}}
			byName[name] = a
			order = append(order, name)
		}
		for _, v := range res.Values {
			a.sum[v.Unit] += v.Value
			a.n[v.Unit]++
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("no benchmark results in:\n%s", out)
	}
	results := make([]BenchResult, 0, len(order))
	for _, name := range order {
		a := byName[name]
		vals := map[string]float64{}
		for u, s := range a.sum {
			vals[u] = s / float64(a.n[u])
		}
		results = append(results, BenchResult{Name: name, Values: vals})
	}
	return results, nil
}

// Find returns the result named name.
func Find(results []BenchResult, name string) (BenchResult, error) {
	for _, r := range results {
		if r.Name == name {
			return r, nil
		}
	}
	return BenchResult{}, fmt.Errorf("no benchmark %q in the results", name)
}

// Ratio formats a/b as "1.23×".
func Ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// Duration formats seconds with a unit that keeps three significant digits.
func Duration(sec float64) string {
	switch {
	case sec >= 1:
		return fmt.Sprintf("%.3g s", sec)
	case sec >= 1e-3:
		return fmt.Sprintf("%.3g ms", sec*1e3)
	case sec >= 1e-6:
		return fmt.Sprintf("%.3g µs", sec*1e6)
	default:
		return fmt.Sprintf("%.3g ns", sec*1e9)
	}
}
