package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A Suite is one benchmark of the document.
type Suite struct {
	// Name identifies the suite for -only and in the section markers.
	Name string
	// Title heads its section.
	Title string
	// Run measures and returns the section's content.
	Run func(ctx context.Context, env *Env) (*Section, error)
}

// Section is what a suite contributes to docs/benchmarks.md.
type Section struct {
	// Commands reproduce the figures (shell commands from the repository root).
	Commands []string
	// Tables hold the figures.
	Tables []Table
	// Notes are paragraphs after the tables: targets, findings.
	Notes []string
}

// Table is a Markdown table with an optional caption above it.
type Table struct {
	Caption string
	Header  []string
	Rows    [][]string
}

// suites lists every suite; files add theirs from init with register, and
// documentOrder sorts them as issue #7 lists the benchmarks.
var suites []Suite

func register(s Suite) {
	suites = append(suites, s)
	slices.SortStableFunc(suites, func(a, b Suite) int { return rank(a.Name) - rank(b.Name) })
}

var documentOrder = []string{"reconcile", "hostcalls", "queue", "memory", "throughput", "lifecycle", "failover", "host"}

// rank is a suite's place in the document; unlisted suites come last.
func rank(name string) int {
	if i := slices.Index(documentOrder, name); i >= 0 {
		return i
	}
	return len(documentOrder)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "docs/benchmarks.md", "document to (re)generate; - for standard output")
	only := fs.String("only", "", "comma-separated suites to run (default: all); -list shows them")
	list := fs.Bool("list", false, "list the suites and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *list {
		for _, s := range suites {
			fmt.Fprintf(stdout, "%-16s %s\n", s.Name, s.Title)
		}
		return 0
	}
	selected, err := selectSuites(*only)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	env, err := newEnv(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	defer env.Close()

	sections := map[string]string{}
	failed := 0
	for _, s := range selected {
		fmt.Fprintf(stderr, "bench: %s: %s\n", s.Name, s.Title)
		start, load := time.Now(), loadAverage()
		sec, err := s.Run(ctx, env)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s failed: %v\n", s.Name, err)
			failed++
			continue
		}
		fmt.Fprintf(stderr, "bench: %s done in %s\n", s.Name, time.Since(start).Round(time.Second))
		sec.Notes = append(sec.Notes, runNote(s.Name, *only != "", start, load))
		sections[s.Name] = renderSection(s, sec)
	}
	// A partial run keeps the machine line: it dates the sections kept.
	if err := writeDocument(*out, stdout, env.Machine, sections, *only != ""); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func selectSuites(only string) ([]Suite, error) {
	if only == "" {
		return suites, nil
	}
	var out []Suite
	for name := range strings.SplitSeq(only, ",") {
		i := slices.IndexFunc(suites, func(s Suite) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("-only: no suite %q (-list shows them)", name)
		}
		out = append(out, suites[i])
	}
	return out, nil
}

// runNote says when a section was measured, if not with the whole document,
// and how loaded the machine was: timings are only as steady as the load.
func runNote(name string, alone bool, start time.Time, load string) string {
	if alone {
		return fmt.Sprintf("Run alone (`-only %s`) on %s; load average %s (1, 5, 15 min) when it started.", name, start.UTC().Format("2006-01-02 15:04 MST"), load)
	}
	return fmt.Sprintf("Load average %s (1, 5, 15 min) when the suite started.", load)
}

// loadAverage returns the 1, 5 and 15 minute load averages of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}
