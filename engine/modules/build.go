package modules

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// GoBuild compiles the Go main package in dir to a wasm module at out, the
// way the engine expects: GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared (a WASI
// reactor exporting _initialize), without cgo and with -trimpath so that the
// digest does not depend on where the source lies. Extra flags go before the
// package path (e.g. -ldflags=-s).
func GoBuild(ctx context.Context, dir, out string, flags ...string) error {
	args := append([]string{"build", "-buildmode=c-shared", "-trimpath", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build module %s: %w\n%s", dir, err, strings.TrimSpace(string(msg)))
	}
	return nil
}
