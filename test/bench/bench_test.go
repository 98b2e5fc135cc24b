package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/wre-dev/wre/engine/modules"
)

func TestParseBenchAveragesByName(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkWorkers/metrics=off/target=wre-2   	  20000	      1000 ns/op	      2000 cpu-ns/op	      17 B/op	       0 allocs/op
BenchmarkWorkers/metrics=off/target=wre-2   	  20000	      3000 ns/op	      4000 cpu-ns/op	      19 B/op	       2 allocs/op
BenchmarkStatusSync/impl=native-2         	    2000	      2114 ns/op	    2477 B/op	      21 allocs/op
PASS
`)
	res, err := parseBench(out)
	require.NoError(t, err)
	require.Len(t, res, 2)
	w, err := Find(res, "Workers/metrics=off/target=wre")
	require.NoError(t, err)
	assert.InDelta(t, 2000e-9, w.Values["sec/op"], 1e-12)
	assert.InDelta(t, 3000e-9, w.Values["cpu-sec/op"], 1e-12)
	assert.InDelta(t, 18, w.Values["B/op"], 1e-9)
	assert.InDelta(t, 1, w.Values["allocs/op"], 1e-9)
	_, err = Find(res, "StatusSync/impl=wasm")
	assert.ErrorContains(t, err, `no benchmark "StatusSync/impl=wasm"`)

	_, err = parseBench([]byte("FAIL\n"))
	assert.ErrorContains(t, err, "no benchmark results")
}

func TestWriteDocumentReplacesOnlyTheSectionsRun(t *testing.T) {
	saved := suites
	t.Cleanup(func() { suites = saved })
	suites = []Suite{{Name: "one", Title: "One"}, {Name: "two", Title: "Two"}}
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	first := map[string]string{
		"one": renderSection(suites[0], &Section{Tables: []Table{{Header: []string{"a", "b"}, Rows: [][]string{{"1", "x|y"}}}}}),
		"two": renderSection(suites[1], &Section{Commands: []string{"go test -bench ."}, Notes: []string{"first run"}}),
	}
	require.NoError(t, writeDocument(path, nil, "Machine: m1.\n", first, false))
	doc, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(doc), "| 1 | x\\|y |")
	assert.Contains(t, string(doc), "```sh\ngo test -bench .\n```")

	second := map[string]string{"two": renderSection(suites[1], &Section{Notes: []string{"second run"}})}
	require.NoError(t, writeDocument(path, nil, "Machine: m2.\n", second, true))
	doc, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(doc), "| 1 | x\\|y |", "section one is kept")
	assert.Contains(t, string(doc), "second run")
	assert.NotContains(t, string(doc), "first run", "section two is replaced")
	assert.Contains(t, string(doc), "Machine: m1.", "a partial run keeps the machine line that dates section one")
	assert.Equal(t, 1, strings.Count(string(doc), "<!-- bench:machine -->"))

	require.NoError(t, writeDocument(path, nil, "Machine: m2.\n", second, false))
	doc, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(doc), "Machine: m2.", "a full run writes the machine line")
	assert.NotContains(t, string(doc), "Machine: m1.")
	assert.Less(t, strings.Index(string(doc), "## One"), strings.Index(string(doc), "## Two"), "suite order")
}

func TestSelectSuites(t *testing.T) {
	_, err := selectSuites("queue,nope")
	assert.ErrorContains(t, err, `no suite "nope"`)
	all, err := selectSuites("")
	require.NoError(t, err)
	assert.Equal(t, len(suites), len(all))
}

func TestWithCustomSectionKeepsTheModuleValid(t *testing.T) {
	empty := []byte("\x00asm\x01\x00\x00\x00")
	tagged := withCustomSection(empty, "v2")
	assert.NotEqual(t, modules.Digest(empty), modules.Digest(tagged), "a new digest")
	rt := wazero.NewRuntime(t.Context())
	defer rt.Close(t.Context())
	m, err := rt.CompileModule(t.Context(), tagged)
	require.NoError(t, err, "still a valid module")
	assert.Empty(t, m.ExportedFunctions())
}

func TestSuitesAreInDocumentOrder(t *testing.T) {
	var names []string
	for _, s := range suites {
		names = append(names, s.Name)
	}
	assert.Equal(t, documentOrder, names, "every suite is listed in documentOrder, in that order")
}
