package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host"
)

func init() {
	register(command{name: "inspect", summary: "show ABI, exports, imports, sizes, digest and manifest of a .wasm or packaged YAML, and what the engine would refuse", run: inspectCommand})
}

func inspectCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommandFlags("wre inspect", "Usage: wre inspect [flags] FILE\n\nFILE is a .wasm module or the YAML of `wre package` (\"-\" reads stdin).\nExits 1 when the engine would refuse the module.", stderr)
	manifestPath := fs.String("manifest", "", "with a .wasm: check it against this manifest too")
	policyPath := fs.String("policy", "", "check the manifest against this engine policy file")
	positional, code, ok := parseArgs(fs, args, 1, "one file")
	if !ok {
		return code
	}
	data, err := readInput(positional[0])
	if err != nil {
		fmt.Fprintf(stderr, "wre inspect: %v\n", err)
		return exitError
	}
	var policy *modules.Policy
	if *policyPath != "" {
		if policy, err = modules.LoadPolicy(*policyPath); err != nil {
			fmt.Fprintf(stderr, "wre inspect: %v\n", err)
			return exitUsage
		}
	}
	r := &report{}
	r.inspect(ctx, positional[0], data, *manifestPath, policy)
	r.print(stdout)
	if len(r.problems) > 0 {
		return exitError
	}
	return exitOK
}

func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

// report is what inspect found.
type report struct {
	lines    []string
	manifest []byte
	problems []string
}

func (r *report) add(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *report) problem(err error) {
	r.problems = append(r.problems, strings.Split(err.Error(), "\n")...)
}

func (r *report) inspect(ctx context.Context, name string, data []byte, manifestPath string, policy *modules.Policy) {
	var m *modules.Manifest
	wasm := data
	r.add("file:      %s (%d bytes)", name, len(data))
	if !bytes.HasPrefix(data, wasmMagic) {
		cms, err := decodeConfigMaps(data)
		if err != nil {
			r.problem(fmt.Errorf("%s is not a wre package: expected a wasm module (starting with \\0asm) or the ConfigMap YAML that `wre package` writes (%w)", name, err))
			return
		}
		compressed := 0
		for _, cm := range cms {
			compressed += len(cm.BinaryData[modules.KeyWasm])
		}
		r.add("packaged:  %d ConfigMaps, %d bytes of compressed wasm", len(cms), compressed)
		if m, wasm, err = modules.Assemble(cms, modules.AssembleOptions{}); err != nil {
			r.problem(err)
			return
		}
	} else if manifestPath != "" {
		raw, err := os.ReadFile(manifestPath)
		if err == nil {
			m, err = modules.ParseManifest(raw)
		}
		if err != nil {
			r.problem(fmt.Errorf("%s: %w", manifestPath, err))
		}
	}
	r.add("wasm:      %d bytes", len(wasm))
	r.add("digest:    %s", modules.Digest(wasm))
	r.describeWasm(ctx, wasm)
	marker := r.checkHost(ctx, wasm)
	if m != nil {
		r.manifest, _ = m.Marshal()
		if marker != "" && marker != m.ABIMarker() {
			r.problem(fmt.Errorf("manifest says abi %s (%s), the wasm exports %s", m.ABI, m.ABIMarker(), marker))
		}
		if m.Digest != "" && m.Digest != modules.Digest(wasm) {
			r.problem(fmt.Errorf("manifest digest %s does not match the wasm", m.Digest))
		}
		if policy != nil {
			if err := policy.Check(m); err != nil {
				r.problem(err)
			}
		}
	}
}

// describeWasm lists the exports, imports and memory of the module.
func (r *report) describeWasm(ctx context.Context, wasm []byte) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		r.problem(fmt.Errorf("decode wasm: %w", err))
		return
	}
	var exports []string
	for name, d := range cm.ExportedFunctions() {
		exports = append(exports, name+signature(d))
	}
	for name := range cm.ExportedMemories() {
		exports = append(exports, name+" (memory)")
	}
	var imports []string
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		imports = append(imports, mod+"."+name+signature(d))
	}
	slices.Sort(exports)
	slices.Sort(imports)
	r.add("exports:   %s", strings.Join(exports, "\n           "))
	r.add("imports:   %s", strings.Join(imports, "\n           "))
	for name, mem := range cm.ExportedMemories() {
		max, ok := mem.Max()
		limit := "no maximum"
		if ok {
			limit = fmt.Sprintf("maximum %d pages", max)
		}
		r.add("memory:    %s: %d initial pages (%d KiB), %s", name, mem.Min(), mem.Min()*64, limit)
	}
}

func signature(d api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(out, ",") + ")"
	}
	return " " + names(d.ParamTypes()) + "->" + names(d.ResultTypes())
}

// checkHost compiles wasm as the engine does and returns its ABI marker, or
// "" with the host's problems recorded.
func (r *report) checkHost(ctx context.Context, wasm []byte) string {
	// The compilation cache makes inspecting a large module again fast.
	cacheDir := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "wre", "compiled")
	}
	rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: cacheDir})
	if err != nil {
		r.problem(err)
		return ""
	}
	defer rt.Close(ctx)
	compiled, err := rt.Compile(ctx, "inspect", wasm)
	if err != nil {
		r.problem(err)
		return ""
	}
	defer compiled.Close(ctx)
	r.add("abi:       %s", compiled.ABIVersion())
	return compiled.ABIVersion()
}

func (r *report) print(w io.Writer) {
	for _, l := range r.lines {
		fmt.Fprintln(w, l)
	}
	if r.manifest != nil {
		fmt.Fprintf(w, "manifest:\n  %s\n", strings.ReplaceAll(strings.TrimSpace(string(r.manifest)), "\n", "\n  "))
	}
	if len(r.problems) == 0 {
		fmt.Fprintln(w, "problems:  none")
		return
	}
	fmt.Fprintln(w, "problems:")
	for _, p := range r.problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

// decodeConfigMaps reads a YAML or JSON stream of ConfigMaps.
func decodeConfigMaps(data []byte) ([]*corev1.ConfigMap, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*corev1.ConfigMap
	for {
		cm := &corev1.ConfigMap{}
		err := dec.Decode(cm)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode YAML: %w", err)
		}
		if cm.Kind == "" && cm.Name == "" {
			continue // empty document
		}
		if cm.Kind != "ConfigMap" {
			return nil, fmt.Errorf("decode YAML: %s %q is not a ConfigMap", cm.Kind, cm.Name)
		}
		out = append(out, cm)
	}
	if len(out) == 0 {
		return nil, errors.New("neither a wasm module nor YAML with module ConfigMaps")
	}
	return out, nil
}
