package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBinaryIsStatic checks the wre binary that goes into the image
// (WRE_BINARY, e.g. bin/wre from `make image-binary`).
func TestBinaryIsStatic(t *testing.T) {
	path := os.Getenv("WRE_BINARY")
	if path == "" {
		t.Fatal("WRE_BINARY is not set: run `make test`, or `make image-binary` and set WRE_BINARY=$PWD/bin/wre")
	}
	require.NoError(t, CheckStatic(path))
}

func TestCheckStatic(t *testing.T) {
	t.Run("static Go binary", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "main.go")
		require.NoError(t, os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644))
		bin := filepath.Join(dir, "static")
		cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-buildvcs=false")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.NoError(t, CheckStatic(bin))
	})
	t.Run("dynamic system binary", func(t *testing.T) {
		sh, err := exec.LookPath("sh")
		require.NoError(t, err)
		err = CheckStatic(sh)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "PT_INTERP")
		assert.Contains(t, err.Error(), "DT_NEEDED")
	})
	t.Run("not an ELF file", func(t *testing.T) {
		assert.Error(t, CheckStatic("static.go"))
	})
}
