package wasmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wre-dev/wre/host/fixture"
)

// Options describe the fixture a module runs against (fixture.Options);
// Runtime.CacheDir defaults to DefaultCacheDir(), so a module compiles once
// per machine.
type Options = fixture.Options

// Harness is a module running against fixtures (fixture.Fixture): its
// Client holds the fixture objects and receives the module's writes, its
// Recorder the events, its Registry the host metrics.
type Harness = fixture.Fixture

// Cache serves resources from a client as an informer cache would: built-in
// kinds as typed objects (fixture.Cache).
type Cache = fixture.Cache

// New compiles wasm and starts it as a module against opts' fixtures; t's
// cleanup closes it.
func New(t testing.TB, wasm []byte, opts Options) *Harness {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	if opts.Runtime.CacheDir == "" {
		opts.Runtime.CacheDir = DefaultCacheDir()
	}
	h, err := fixture.New(ctx, wasm, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(ctx) })
	return h
}

// DefaultCacheDir is the compilation cache shared by harnesses:
// $TMPDIR/wre-wasmtest-cache. wazero keys entries by module digest and wazero
// version, so sharing it across runs is safe.
func DefaultCacheDir() string { return filepath.Join(os.TempDir(), "wre-wasmtest-cache") }

var builds sync.Map // package directory → *build

type build struct {
	once sync.Once
	wasm []byte
	err  error
}

// Build compiles the guest package in dir (a path relative to the test's
// working directory, or absolute) with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared, once per test binary run, and returns the module bytes.
func Build(t testing.TB, dir string) []byte {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := builds.LoadOrStore(abs, &build{})
	b := v.(*build)
	b.once.Do(func() { b.wasm, b.err = goBuild(abs) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.wasm
}

func goBuild(dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "wasmtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "module.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build guest %s: %w\n%s", dir, err, strings.TrimSpace(string(msg)))
	}
	return os.ReadFile(out)
}
