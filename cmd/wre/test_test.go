package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

var examples sync.Map // module name → wasm path

// buildExample builds modules/<name> with `wre build` once per test binary.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	if name == "status-sync" {
		return buildStatusSync(t)
	}
	if path, ok := examples.Load(name); ok {
		return path.(string)
	}
	out := filepath.Join(os.TempDir(), "wre-cmd-test-"+name+".wasm")
	code, _, stderr := wre(t, "build", "../../modules/"+name, "-o", out)
	require.Equal(t, exitOK, code, stderr)
	examples.Store(name, out)
	return out
}

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

const statusSyncManifest = "../../modules/status-sync/module.yaml"

const widgetCase = `
objects:
  - {apiVersion: demo.wre.dev/v1, kind: Widget, metadata: {namespace: demo, name: w}, spec: {desired: blue}}
`

// TestTestExampleModules runs the committed cases of every example module,
// as a .wasm with its manifest, and status-sync's also as packaged YAML.
func TestTestExampleModules(t *testing.T) {
	for _, name := range []string{"status-sync", "configmap-replicator", "app-operator"} {
		t.Run(name, func(t *testing.T) {
			dir := "../../modules/" + name
			cases, err := os.ReadFile(filepath.Join(dir, "testdata", "cases.yaml"))
			require.NoError(t, err)
			n := strings.Count(string(cases), "\nname: ")
			require.Positive(t, n)

			code, out, stderr := wre(t, "test", "--manifest", filepath.Join(dir, "module.yaml"), buildExample(t, name), filepath.Join(dir, "testdata"))
			require.Equal(t, exitOK, code, out+stderr)
			assert.Equal(t, n, strings.Count(out, "PASS  "), out)
			assert.NotContains(t, out, "FAIL")
			assert.Contains(t, out, "ok    ")
		})
	}

	wasm := buildStatusSync(t)
	code, packaged, stderr := wre(t, "package", "--manifest", statusSyncManifest, wasm)
	require.Equal(t, exitOK, code, stderr)
	file := writeFile(t, t.TempDir(), "status-sync.yaml", packaged)
	code, out, stderr := wre(t, "test", file, "../../modules/status-sync/testdata/cases.yaml")
	require.Equal(t, exitOK, code, out+stderr)
	assert.Contains(t, out, "ok    3 cases passed")
	assert.Regexp(t, `level=INFO msg="synced widget=demo/w from=\\"\\" to=blue" module=status-sync reconcileID=\S+ object=demo/w`, stderr,
		"guest logs go to stderr, tagged as in the engine")
}

func TestTestReportsFailures(t *testing.T) {
	wasm := buildStatusSync(t)
	file := writeFile(t, t.TempDir(), "wrong.yaml", `
name: passes
`+widgetCase+`
---
name: wrong
`+widgetCase+`
expect:
  result: {requeueAfter: 1m}
  objects:
    - apiVersion: demo.wre.dev/v1
      kind: Widget
      metadata: {namespace: demo, name: w, labels: {"app.kubernetes.io/name": x}}
      spec: null
      status: {current: red}
    - {apiVersion: demo.wre.dev/v1, kind: Widget, metadata: {namespace: demo, name: other}}
    - {apiVersion: v1, kind: ConfigMap, metadata: {namespace: demo, name: w}, data: [a]}
  absent: [{apiVersion: demo.wre.dev/v1, kind: Widget, metadata: {namespace: demo, name: w}}]
  events: [Normal Synced, Warning]
  writes: []
---
name: wants an error
`+widgetCase+`
expect: {error: boom}
`)
	code, out, stderr := wre(t, "test", "--manifest", statusSyncManifest, wasm, file)
	require.Equal(t, exitError, code, stderr)
	assert.Equal(t, `PASS  passes (`+file+`#1)
FAIL  wrong (`+file+`#2)
      reconcile demo/w: expect.result.requeueAfter: got 0s, want 1m0s
      expect.objects[0] Widget demo/w: metadata.labels: missing, want {"app.kubernetes.io/name":"x"}
      expect.objects[0] Widget demo/w: spec: got {"desired":"blue"}, want it absent
      expect.objects[0] Widget demo/w: status.current: got "blue", want "red"
      expect.objects[1] Widget demo/other: not found
      expect.objects[2] ConfigMap demo/w: not found
      expect.absent[0] Widget demo/w: still exists
      expect.events[1] "Warning": no matching event (expected events match in order); got ["Normal Synced status.current set to \"blue\""]
      expect.writes: got ["patch widgets.demo.wre.dev/status demo/w"], want []
FAIL  wants an error (`+file+`#3)
      reconcile demo/w: no error, want one containing "boom" (expect.error)
FAIL  2 of 3 cases failed
`, stripDurations(out))

	code, out, _ = wre(t, "test", "--run", "^wants", "--manifest", statusSyncManifest, wasm, file)
	assert.Equal(t, exitError, code)
	assert.Equal(t, 1, strings.Count(out, "FAIL  wants"), out)
	assert.NotContains(t, out, "passes")
}

// stripDurations drops the durations at the end of PASS and FAIL lines.
func stripDurations(out string) string {
	return regexp.MustCompile(`(?m)^((?:PASS|FAIL)  .*)  [0-9.]+(?:ns|µs|ms|s|m[0-9.]+s)$`).ReplaceAllString(out, "$1")
}

// TestTestEnforcesPermissions runs status-sync with a manifest that does not
// grant the status update it makes: the host denies it as the engine would.
func TestTestEnforcesPermissions(t *testing.T) {
	wasm := buildStatusSync(t)
	raw, err := os.ReadFile(statusSyncManifest)
	require.NoError(t, err)
	require.Contains(t, string(raw), "resources: [widgets/status]")
	dir := t.TempDir()
	manifest := writeFile(t, dir, "module.yaml", strings.Replace(string(raw), "resources: [widgets/status]", "resources: [widgets/scale]", 1))
	denied := `widgets/status.demo.wre.dev "w" is forbidden: module "status-sync" is not granted "patch" in namespace "demo"`

	code, out, stderr := wre(t, "test", "--manifest", manifest, wasm, writeFile(t, dir, "case.yaml", widgetCase))
	assert.Equal(t, exitError, code, stderr)
	assert.Contains(t, out, "reconcile demo/w: unexpected error: "+denied)

	code, out, stderr = wre(t, "test", "--manifest", manifest, wasm, writeFile(t, dir, "expected.yaml", widgetCase+`
expect:
  error: is forbidden
  writes: []
  objects: [{apiVersion: demo.wre.dev/v1, kind: Widget, metadata: {namespace: demo, name: w}, status: null}]
`))
	assert.Equal(t, exitOK, code, out+stderr)

	// Without a manifest the module may do anything (but read Secrets).
	code, out, stderr = wre(t, "test", wasm, filepath.Join(dir, "case.yaml"))
	assert.Equal(t, exitOK, code, out+stderr)
}

// TestTestRender shows the writes of a case without expectations.
func TestTestRender(t *testing.T) {
	wasm := buildStatusSync(t)
	file := writeFile(t, t.TempDir(), "render.yaml", widgetCase)

	code, out, stderr := wre(t, "test", "--output", "yaml", "--manifest", statusSyncManifest, wasm, file)
	require.Equal(t, exitOK, code, stderr)
	require.True(t, strings.HasPrefix(out, "---\n"), out)
	assert.Contains(t, stderr, "ok    1 case passed", "stdout is YAML only")
	var report struct {
		Name       string
		Source     string
		Passed     bool
		Reconciles []map[string]string
		Writes     []struct {
			Verb, Resource, Namespace, Name, PatchType string
			Body                                       map[string]any
		}
		Events  []string
		Objects []map[string]any
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(strings.TrimPrefix(out, "---\n")), &report), out)
	assert.True(t, report.Passed)
	assert.Equal(t, file+"#1", report.Name)
	assert.Equal(t, file+"#1", report.Source)
	assert.Equal(t, []map[string]string{{"request": "demo/w", "requeueAfter": "0s"}}, report.Reconciles)
	require.Len(t, report.Writes, 1)
	w := report.Writes[0]
	assert.Equal(t, []string{"patch", "widgets.demo.wre.dev/status", "demo", "w", "application/apply-patch+yaml"},
		[]string{w.Verb, w.Resource, w.Namespace, w.Name, w.PatchType}, "a server-side apply of the status")
	assert.Equal(t, map[string]any{"current": "blue", "observedGeneration": 0.0}, w.Body["status"], "what the module sent: every declared status field")
	require.Len(t, report.Objects, 1)
	assert.Equal(t, map[string]any{"current": "blue", "observedGeneration": 0.0}, report.Objects[0]["status"], "the object afterwards")
	assert.Equal(t, []string{`Normal Synced status.current set to "blue"`}, report.Events)

	code, out, stderr = wre(t, "test", "-v", "--manifest", statusSyncManifest, wasm, file)
	require.Equal(t, exitOK, code, stderr)
	for _, want := range []string{"reconcile demo/w: no requeue", "write: patch widgets.demo.wre.dev/status demo/w",
		`event: Normal Synced status.current set to "blue"`, "object Widget demo/w:\n        apiVersion: demo.wre.dev/v1", "          current: blue"} {
		assert.Contains(t, out, want)
	}
}

func TestTestBadInputs(t *testing.T) {
	wasm := buildStatusSync(t)
	dir := t.TempDir()
	file := func(name, content string) string { return writeFile(t, dir, name, content) }
	good := file("good.yaml", widgetCase)
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.Mkdir(empty, 0o700))
	file("empty/notes.txt", "not a case")
	raw, err := os.ReadFile(statusSyncManifest)
	require.NoError(t, err)
	abiV1 := file("abi-v1.yaml", strings.Replace(string(raw), "abi: v2", "abi: v1", 1))
	var packaged bytes.Buffer
	require.Equal(t, exitOK, dispatch(t.Context(), []string{"package", "--manifest", statusSyncManifest, wasm}, &packaged, &bytes.Buffer{}))
	packagedFile := file("packaged.yaml", packaged.String())

	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"help", []string{"-h"}, exitOK, "Usage: wre test [flags] MODULE CASES"},
		{"one argument", []string{wasm}, exitUsage, "wre test: want a module and a case file or directory"},
		{"bad output", []string{"--output", "json", wasm, good}, exitUsage, `--output "json": want text or yaml`},
		{"bad run", []string{"--run", "(", wasm, good}, exitUsage, "--run: error parsing regexp"},
		{"bad log format", []string{"--log-format", "xml", wasm, good}, exitUsage, `--log-format: logging: unknown format "xml"`},
		{"run matches nothing", []string{"--run", "nothing", wasm, good}, exitUsage, `no case matches --run "nothing"`},
		{"missing module", []string{filepath.Join(dir, "none.wasm"), good}, exitUsage, "none.wasm: no such file"},
		{"garbage wasm", []string{file("garbage.wasm", "garbage"), good}, exitUsage, `garbage.wasm: not a wasm module (no \0asm header)`},
		{"invalid wasm", []string{file("invalid.wasm", "\x00asm\x01\x00\x00\x00\x01"), good}, exitUsage, "invalid.wasm: "},
		{"not packaged YAML", []string{good, good}, exitUsage, "good.yaml: neither a wasm module nor YAML with module ConfigMaps"},
		{"manifest with packaged YAML", []string{"--manifest", statusSyncManifest, packagedFile, good}, exitUsage, "--manifest: " + packagedFile + " is packaged YAML"},
		{"missing manifest", []string{"--manifest", filepath.Join(dir, "no-manifest.yaml"), wasm, good}, exitUsage, "--manifest: open " + filepath.Join(dir, "no-manifest.yaml")},
		{"invalid manifest", []string{"--manifest", good, wasm, good}, exitUsage, good + ": decode manifest"},
		{"limit above the default ceiling", []string{"--manifest", file("greedy.yaml", strings.Replace(string(raw), "memoryLimit: 64Mi", "memoryLimit: 64Gi", 1)), wasm, good},
			exitUsage, "manifest: memoryLimit 64Gi is above the engine's ceiling of 1Gi (wre run --max-module-memory or policy limits.memory)"},
		{"ABI mismatch", []string{"--manifest", abiV1, wasm, good}, exitUsage, "manifest says abi v1 (wre_abi_v1), the wasm exports wre_abi_v2"},
		{"missing cases", []string{wasm, filepath.Join(dir, "no-cases.yaml")}, exitUsage, "no-cases.yaml: no such file"},
		{"no cases", []string{wasm, empty}, exitUsage, empty + ": no cases"},
		{"unknown field", []string{wasm, file("typo.yaml", widgetCase+"---\n"+widgetCase+"expct: {}\n")}, exitUsage, `typo.yaml#2: error unmarshaling JSON: while decoding JSON: json: unknown field "expct"`},
		{"unknown expect field", []string{wasm, file("typo2.yaml", widgetCase+"expect: {evnts: []}\n")}, exitUsage, `typo2.yaml#1: error unmarshaling JSON: while decoding JSON: json: unknown field "evnts"`},
		{"bad yaml", []string{wasm, file("bad.yaml", "objects: [\n")}, exitUsage, "bad.yaml#1: error converting YAML to JSON"},
		{"no apiVersion", []string{wasm, file("noapi.yaml", "name: x\nobjects: [{kind: Widget, metadata: {name: w}}]\n")}, exitUsage, `noapi.yaml#1: case "x": objects[0]: apiVersion is required`},
		{"no name", []string{wasm, file("noname.yaml", "objects: [{apiVersion: v1, kind: ConfigMap, metadata: {}}]\n")}, exitUsage, "noname.yaml#1: objects[0]: metadata.name is required"},
		{"not an object", []string{wasm, file("scalar.yaml", "objects: [3]\n")}, exitUsage, "scalar.yaml#1: objects[0]: not an object"},
		{"bad list item", []string{wasm, file("list.yaml", "objects: [{apiVersion: v1, kind: List, items: [{kind: ConfigMap}]}]\n")}, exitUsage, "list.yaml#1: objects[0].items[0]: apiVersion is required"},
		{"bad expected object", []string{wasm, file("badexp.yaml", widgetCase+"expect: {objects: [{apiVersion: v1, metadata: {name: x}}]}\n")}, exitUsage, "badexp.yaml#1: expect.objects[0]: kind is required"},
		{"bad absent object", []string{wasm, file("badabs.yaml", widgetCase+"expect: {absent: [{kind: ConfigMap}]}\n")}, exitUsage, "badabs.yaml#1: expect.absent[0]: apiVersion is required"},
		{"request not in fixtures", []string{"--manifest", statusSyncManifest, wasm, file("noobj.yaml", widgetCase+"reconcile: demo/other\n")}, exitUsage, `noobj.yaml#1: reconcile[0] "demo/other": objects hold no Widget demo/other`},
		{"request of another kind", []string{"--manifest", statusSyncManifest, wasm, file("kind.yaml", "objects: [{apiVersion: v1, kind: ConfigMap, metadata: {namespace: demo, name: w}}]\nreconcile: [demo/w]\n")}, exitUsage, `kind.yaml#1: reconcile[0] "demo/w": objects hold no Widget demo/w`},
		{"malformed request", []string{wasm, file("req.yaml", widgetCase+"reconcile: a/b/c\n")}, exitUsage, `req.yaml#1: reconcile[0] "a/b/c": want namespace/name or name`},
		{"request not a string", []string{wasm, file("req2.yaml", widgetCase+"reconcile: {name: w}\n")}, exitUsage, `req2.yaml#1: error unmarshaling JSON: while decoding JSON: reconcile: want "namespace/name" or a list of them`},
		{"nothing to reconcile", []string{"--manifest", statusSyncManifest, wasm, file("none.yaml", "objects: []\n")}, exitUsage, "none.yaml#1: objects: no Widget to reconcile"},
		{"no objects without manifest", []string{wasm, file("none2.yaml", "name: empty\n")}, exitUsage, `none2.yaml#1: case "empty": objects: without a manifest the first object names the primary kind`},
		{"cached without version", []string{wasm, file("cached.yaml", widgetCase+"cached: [{resource: widgets}]\n")}, exitUsage, "cached.yaml#1: cached[0]: version and resource are required"},
		{"duplicate fixture", []string{wasm, file("dup.yaml", widgetCase+"  - {apiVersion: demo.wre.dev/v1, kind: Widget, metadata: {namespace: demo, name: w}}\nreconcile: demo/w\n")}, exitUsage, `dup.yaml#1: objects: fixture Widget demo/w: widgets.demo.wre.dev "w" already exists`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, stderr := wre(t, append([]string{"test"}, c.args...)...)
			assert.Equal(t, c.code, code, out+stderr)
			assert.Contains(t, stderr, c.stderr)
		})
	}
}

func TestDiffSubset(t *testing.T) {
	got := map[string]any{"a": float64(1), "b": []any{map[string]any{"c": "d", "e": "f"}}, "n": nil}
	for _, c := range []struct {
		name string
		want any
		diff []string
	}{
		{"subset", map[string]any{"a": 1, "b": []any{map[string]any{"c": "d"}}}, nil},
		{"null is absent", map[string]any{"x": nil, "n": nil}, nil},
		{"scalar", map[string]any{"a": 2}, []string{"a: got 1, want 2"}},
		{"list length", map[string]any{"b": []any{}}, []string{`b: got 1 items, want 0: got [{"c":"d","e":"f"}]`}},
		{"list item", map[string]any{"b": []any{map[string]any{"c": "x"}}}, []string{`b[0].c: got "d", want "x"`}},
		{"not a list", map[string]any{"a": []any{}}, []string{"a: got 1, want a list"}},
		{"not an object", map[string]any{"a": map[string]any{}}, []string{"a: got 1, want an object"}},
		{"present", map[string]any{"a": nil}, []string{"a: got 1, want it absent"}},
		{"missing", map[string]any{"z": "y", "w.x": 1}, []string{`["w.x"]: missing, want 1`, `z: missing, want "y"`}},
		{"root", "x", []string{`(object): got {"a":1,"b":[{"c":"d","e":"f"}],"n":null}, want "x"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.diff, diffSubset("", normalize(c.want), got))
		})
	}
}
