package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/engine/logging"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host"
)

func init() {
	register(command{name: "test", summary: "run a module against fixture objects from YAML case files, without a cluster, and check its writes, status, events and requeue", run: testCommand})
}

const testUsage = `Usage: wre test [flags] MODULE CASES

Runs MODULE (a .wasm, or the YAML of ` + "`wre package`" + `) in the real host against
the fixture objects of each case in CASES (a YAML file, one case per document,
or a directory of *.yaml files), then checks the case's expectations. Nothing
talks to a cluster: a fake one holds the objects and receives the writes.

A case:

  name: copies spec.desired to status   # default: FILE#N
  objects:                              # fixture objects of any kind (a kind: List is expanded)
    - {apiVersion: demo.wre.dev/v1, kind: Widget, metadata: {namespace: demo, name: w}, spec: {desired: blue}}
  reconcile: demo/w                     # or a list; default: every object of the primary kind
  cached: [{group: "", version: v1, resource: configmaps}]   # default: for, owns and watches
  expect:                               # every part is optional
    result: {requeueAfter: 10m}         # each reconcile's result ({} is no requeue)
    error: forbidden                    # each reconcile fails with this in its error; without it, none may fail
    objects:                            # exist afterwards with these fields (a field: null must be absent)
      - {apiVersion: demo.wre.dev/v1, kind: Widget, metadata: {namespace: demo, name: w}, status: {current: blue}}
    absent: [{apiVersion: v1, kind: ConfigMap, metadata: {namespace: demo, name: old}}]
    events: ["Normal Synced"]           # in order, each within one "<type> <reason> <message>"; [] is none
    writes: ["update widgets.demo.wre.dev/status demo/w"]   # exactly these, in order (as -v shows them); [] is none

Permissions, config, limits and the primary resource come from the manifest
(with a .wasm: --manifest, default ./module.yaml; without one the module may
do anything but read Secrets, and the kind of a case's first object is its
primary kind). Exits 1 when a case fails, 2 when an input is invalid.`

// testFlags are the flags of `wre test`.
type testFlags struct {
	manifest    string
	manifestSet bool
	verbose     bool
	output      string
	run         *regexp.Regexp
	cacheDir    string
}

func testCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommandFlags("wre test", testUsage, stderr)
	var f testFlags
	fs.StringVar(&f.manifest, "manifest", "module.yaml", "with a .wasm: the module manifest (the default may be missing)")
	fs.BoolVar(&f.verbose, "v", false, "print each case's reconciles, writes, events and resulting objects")
	fs.StringVar(&f.output, "output", "text", `"text", or "yaml": one document per case with its reconciles, writes, events and resulting objects`)
	runPattern := fs.String("run", "", "run only the cases whose name matches this regular expression")
	fs.StringVar(&f.cacheDir, "cache-dir", userCompiledCacheDir(), "directory of the compiled-module cache (empty: compile in memory)")
	logFormat := fs.String("log-format", string(logging.FormatText), "format of the module's logs on stderr: text or json")
	positional, code, ok := parseArgs(fs, args, 2, "a module and a case file or directory")
	if !ok {
		return code
	}
	fs.Visit(func(fl *flag.Flag) { f.manifestSet = f.manifestSet || fl.Name == "manifest" })
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "wre test: %v\n", err)
		return exitUsage
	}
	if f.output != "text" && f.output != "yaml" {
		return usageErr(fmt.Errorf("--output %q: want text or yaml", f.output))
	}
	var err error
	if f.run, err = regexp.Compile(*runPattern); err != nil {
		return usageErr(fmt.Errorf("--run: %w", err))
	}
	log, err := logging.New(logging.Options{Format: logging.Format(*logFormat), Writer: stderr})
	if err != nil {
		return usageErr(fmt.Errorf("--log-format: %w", err))
	}
	mod, err := loadTestModule(positional[0], f)
	if err != nil {
		return usageErr(err)
	}
	cases, err := loadCases(positional[1])
	if err != nil {
		return usageErr(err)
	}
	for _, c := range cases {
		if err := c.resolve(mod); err != nil {
			return usageErr(err)
		}
	}
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: f.cacheDir, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "wre test: %v\n", err)
		return exitError
	}
	defer rt.Close(context.WithoutCancel(ctx))
	compiled, err := rt.Compile(ctx, mod.opts.Name, mod.wasm)
	if err == nil && mod.manifest != nil && compiled.ABIVersion() != mod.manifest.ABIMarker() {
		err = fmt.Errorf("manifest says abi %s (%s), the wasm exports %s", mod.manifest.ABI, mod.manifest.ABIMarker(), compiled.ABIVersion())
	}
	if err != nil {
		return usageErr(fmt.Errorf("%s: %w", positional[0], err))
	}
	defer compiled.Close(context.WithoutCancel(ctx))

	passed, failed := 0, 0
	for _, c := range cases {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "wre test: %v\n", context.Cause(ctx))
			return exitError
		}
		if !f.run.MatchString(c.Name) {
			continue
		}
		r := c.run(ctx, rt, compiled, mod)
		if err := r.print(stdout, f); err != nil {
			fmt.Fprintf(stderr, "wre test: %v\n", err)
			return exitError
		}
		if r.passed() {
			passed++
		} else {
			failed++
		}
	}
	summary := stdout
	if f.output == "yaml" {
		summary = stderr // stdout is YAML only
	}
	switch {
	case passed+failed == 0:
		fmt.Fprintf(stderr, "wre test: no case matches --run %q\n", *runPattern)
		return exitUsage
	case failed > 0:
		fmt.Fprintf(summary, "FAIL  %d of %s failed\n", failed, countCases(passed+failed))
		return exitError
	}
	fmt.Fprintf(summary, "ok    %s passed\n", countCases(passed))
	return exitOK
}

// countCases returns "1 case" or "<n> cases".
func countCases(n int) string {
	if n == 1 {
		return "1 case"
	}
	return fmt.Sprintf("%d cases", n)
}

// userCompiledCacheDir is the compilation cache of the module tooling,
// <user cache dir>/wre/compiled, or "" when there is no user cache dir.
func userCompiledCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "wre", "compiled")
}

// testModule is the module under test.
type testModule struct {
	wasm     []byte
	manifest *modules.Manifest // nil: none given
	opts     host.ModuleOptions
}

// loadTestModule reads a .wasm (and its manifest) or a packaged YAML.
func loadTestModule(path string, f testFlags) (*testModule, error) {
	data, err := readInput(path)
	if err != nil {
		return nil, err
	}
	mod := &testModule{wasm: data}
	if !bytes.HasPrefix(data, wasmMagic) {
		if f.manifestSet {
			return nil, fmt.Errorf("--manifest: %s is packaged YAML, which carries its manifest", path)
		}
		if filepath.Ext(path) == ".wasm" {
			return nil, fmt.Errorf("%s: not a wasm module (no \\0asm header)", path)
		}
		cms, err := decodeConfigMaps(data)
		if err == nil {
			mod.manifest, mod.wasm, err = modules.Assemble(cms, modules.AssembleOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else {
		raw, err := os.ReadFile(f.manifest)
		switch {
		case errors.Is(err, os.ErrNotExist) && !f.manifestSet:
			// No manifest: a module that may do anything but read Secrets.
		case err != nil:
			return nil, fmt.Errorf("--manifest: %w", err)
		default:
			if mod.manifest, err = modules.ParseManifest(raw); err != nil {
				return nil, fmt.Errorf("%s: %w", f.manifest, err)
			}
		}
	}
	if mod.manifest != nil {
		// As an engine with the default ceilings would.
		if err := modules.AllowAll.Limits.Check(mod.manifest); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		mod.opts = modules.AllowAll.Limits.Apply(mod.manifest.ModuleOptions())
	} else {
		mod.opts = host.ModuleOptions{
			Name:        strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)),
			Permissions: host.Permissions{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
		}
	}
	return mod, nil
}

// watched returns the resources the engine would watch, hence cache, for the
// module, and their list kinds.
func (m *testModule) watched() ([]schema.GroupVersionResource, map[schema.GroupVersionResource]string) {
	res := []modules.Resource{m.manifest.For}
	res = append(res, m.manifest.Owns...)
	for _, w := range m.manifest.Watches {
		res = append(res, w.Resource)
	}
	var cached []schema.GroupVersionResource
	listKinds := map[schema.GroupVersionResource]string{}
	for _, r := range res {
		cached = append(cached, r.GVR())
		listKinds[r.GVR()] = r.Kind + "List"
	}
	return cached, listKinds
}
