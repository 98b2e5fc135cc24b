package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/guest-sdk/lean/leangen"
)

func init() {
	register(command{name: "build", summary: "generate lean SDK codecs, compile a Go module directory to wasm (wasip1, c-shared) and print its size and digest", run: buildCommand})
}

func buildCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommandFlags("wre build", "Usage: wre build [flags] DIR\n\nCompiles the Go main package in DIR with GOOS=wasip1 GOARCH=wasm\n-buildmode=c-shared -trimpath and prints the size and digest of the module.", stderr)
	out := fs.String("o", "", "output file (default: <DIR name>.wasm in the current directory)")
	strip := fs.Bool("s", false, "strip debug information (-ldflags=-s -w): smaller, but panics lose file names")
	positional, code, ok := parseArgs(fs, args, 1, "one directory")
	if !ok {
		return code
	}
	dir, err := filepath.Abs(positional[0])
	if err != nil {
		fmt.Fprintf(stderr, "wre build: %v\n", err)
		return exitUsage
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "wre build: %s is not a directory\n", positional[0])
		return exitUsage
	}
	if *out == "" {
		*out = filepath.Base(dir) + ".wasm"
	}
	if *out, err = filepath.Abs(*out); err != nil {
		fmt.Fprintf(stderr, "wre build: %v\n", err)
		return exitUsage
	}
	var flags []string
	if *strip {
		flags = append(flags, "-ldflags=-s -w")
	}
	// Lean SDK modules: regenerate the codecs of their +wre:resource types.
	if _, err := leangen.Generate(dir); err != nil {
		fmt.Fprintf(stderr, "wre build: %v\n", err)
		return exitError
	}
	if err := modules.GoBuild(ctx, dir, *out, flags...); err != nil {
		fmt.Fprintf(stderr, "wre build: %v\n", err)
		return exitError
	}
	wasm, err := os.ReadFile(*out)
	if err != nil {
		fmt.Fprintf(stderr, "wre build: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: %d bytes, %s\n", *out, len(wasm), modules.Digest(wasm))
	return exitOK
}

// subcommandFlags returns the FlagSet of a subcommand; usage is the text
// printed above the flags by -h.
func subcommandFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage+"\n\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses args, whose flags may follow the positional arguments too
// (`wre build DIR -o out.wasm`, which FlagSet.Parse alone stops at), and
// checks that want positional arguments (what) remain. When it returns
// ok == false the command exits with code.
func parseArgs(fs *flag.FlagSet, args []string, want int, what string) (positional []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != want {
		fmt.Fprintf(fs.Output(), "%s: want %s, got %q\n", fs.Name(), what, positional)
		fs.Usage()
		return nil, exitUsage, false
	}
	return positional, exitOK, true
}
