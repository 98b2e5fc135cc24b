package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
)

// scriptModule writes the script test guest (host/testdata/guests/script) and
// a manifest over ConfigMaps with config (the guest's script, JSON) and the
// extra manifest lines to dir, and returns their paths.
func scriptModule(t *testing.T, dir, config, extra string) (wasm, manifest string) {
	t.Helper()
	wasm = filepath.Join(dir, "script.wasm")
	require.NoError(t, os.WriteFile(wasm, wasmtest.Build(t, "../../host/testdata/guests/script"), 0o600))
	manifest = writeFile(t, dir, "module.yaml", `apiVersion: wre.dev/v1alpha1
kind: Module
name: script
abi: v1
for: {version: v1, resource: configmaps, kind: ConfigMap}
permissions:
  - {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}
`+extra+`
config: `+config+"\n")
	return wasm, manifest
}

// TestTestBoundsALogStorm runs, through `wre test`, a guest whose reconcile
// writes a million lines (600,000 through wre.log, 200,000 printed to stdout
// and to stderr each): the output stays far below 10 MiB and ends the storm
// with the drop marker.
func TestTestBoundsALogStorm(t *testing.T) {
	dir := t.TempDir()
	wasm, manifest := scriptModule(t, dir,
		`{"steps": [{"log": "a log line of the storm", "repeat": 600000}, {"print": "a printed line of the storm", "repeat": 200000}]}`,
		"reconcileTimeout: 5m") // slow under the race detector
	cases := writeFile(t, dir, "case.yaml", "objects: [{apiVersion: v1, kind: ConfigMap, metadata: {namespace: ns, name: storm}}]\n")
	code, out, stderr := wre(t, "test", "--manifest", manifest, wasm, cases)
	require.Equal(t, exitOK, code, out+firstLines(stderr, 20))
	size := len(out) + len(stderr)
	t.Logf("wre test output of a 1e6-line log storm: %d bytes (stdout %d, stderr %d)", size, len(out), len(stderr))
	assert.LessOrEqual(t, size, 10<<20)
	assert.Equal(t, host.DefaultMaxLogLines, strings.Count(stderr, "of the storm"), "the default limit of lines per reconcile")
	assert.Equal(t, 1, strings.Count(stderr, host.LogDroppedMarker))
	assert.Contains(t, stderr, host.LogDroppedMarker+" 999000 lines (")
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
