package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

func init() {
	register(command{name: "version", summary: "print the version of wre, the commit it was built from and the Go release", run: versionCommand})
}

func versionCommand(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommandFlags("wre version", "Usage: wre version\n\nPrints the module version of this wre (a tag for `go install …@version`;\nfrom a checkout, what go build derives from git, or (devel)), its commit and\nthe Go release.", stderr)
	if _, code, ok := parseArgs(fs, args, 0, "no arguments"); !ok {
		return code
	}
	info, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionLine(info))
	return exitOK
}

// versionLine describes a build: "wre v0.3.0 (commit 1a2b3c4d5e6f, go1.26.8
// linux/amd64)"; the commit gains "+modified" when built from a dirty tree.
func versionLine(info *debug.BuildInfo) string {
	version := "(unknown)"
	var details []string
	if info != nil {
		version = info.Main.Version
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			rev = rev[:min(len(rev), 12)]
			if settings["vcs.modified"] == "true" {
				rev += "+modified"
			}
			details = append(details, "commit "+rev)
		}
	}
	if version == "" {
		version = "(devel)"
	}
	details = append(details, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("wre %s (%s)", version, strings.Join(details, ", "))
}
