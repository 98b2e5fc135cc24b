package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wre-dev/wre/engine/registry"
)

func init() {
	register(command{name: "status", summary: "show the modules an engine runs (GET /modules) as a table", run: statusCommand})
}

func statusCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommandFlags("wre status", "Usage: wre status [flags]\n\nPrints the modules of a running engine, read from its /modules endpoint\n(next to /metrics; e.g. kubectl -n wre-system port-forward deploy/wre 8080).", stderr)
	url := fs.String("url", "http://localhost:8080", "base URL of the engine's metrics server")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the engine")
	_, code, ok := parseArgs(fs, args, 0, "no arguments")
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	statuses, err := registry.FetchStatuses(ctx, strings.TrimSuffix(*url, "/")+"/modules")
	if err != nil {
		fmt.Fprintf(stderr, "wre status: %v\n", err)
		return exitError
	}
	printStatus(stdout, statuses, time.Now())
	return exitOK
}

// printStatus writes one row per module; digests are shortened as in image
// references (sha256: and 12 hex digits).
func printStatus(w io.Writer, statuses []registry.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tDIGEST\tABI\tINSTANCES\tRECONCILES\tERRORS\tAGE\tLAST ERROR")
	for _, s := range statuses {
		digest, age := "-", "-"
		if s.Digest != "" {
			digest = s.Digest[:min(len(s.Digest), len("sha256:")+12)]
		}
		if s.LoadedAt != nil {
			age = now.Sub(*s.LoadedAt).Round(time.Second).String()
		}
		lastErr := s.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.State, digest, orDash(s.ABI), s.Instances, s.Reconciles, s.ReconcileErrors, age, lastErr)
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
