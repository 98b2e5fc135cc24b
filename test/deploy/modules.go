package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// PackageExampleModules builds every example module with `wre build` and
// packages it with `wre package` into dir/<name>.yaml: the commands of
// deploy/overlays/examples/package-modules.sh, with the output in dir rather
// than in the checkout. wre is the path of the wre binary.
func PackageExampleModules(ctx context.Context, wre, dir string) error {
	for _, name := range ExampleModules {
		wasm := filepath.Join(dir, name+".wasm")
		if out, err := exec.CommandContext(ctx, wre, "build", "-o", wasm, filepath.Join(RepoRoot(), "modules", name)).CombinedOutput(); err != nil {
			return fmt.Errorf("wre build %s: %w\n%s", name, err, out)
		}
		cmd := exec.CommandContext(ctx, wre, "package", "--namespace", "wre-system",
			"--manifest", filepath.Join(RepoRoot(), "modules", name, "module.yaml"), wasm)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		yaml, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("wre package %s: %w\n%s", name, err, stderr.Bytes())
		}
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), yaml, 0o644); err != nil {
			return err
		}
	}
	return nil
}
