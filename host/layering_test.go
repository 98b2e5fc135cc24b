package host_test

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const modulePath = "github.com/wre-dev/wre"

// TestHostImportsNothingUnderEngine keeps the data flow one way: the engine
// uses the host, never the reverse. It walks the production imports (test
// files excluded) of every package under host/, transitively through the
// repository's own packages.
func TestHostImportsNothingUnderEngine(t *testing.T) {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	var pkgs []string
	err = filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if p, err := build.ImportDir(path, 0); err == nil && len(p.GoFiles) > 0 {
			pkgs = append(pkgs, modulePath+"/"+filepath.ToSlash(filepath.Join("host", path)))
		}
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, pkgs, modulePath+"/host/reconcile")

	seen := map[string]string{} // package → the package that imported it first
	var visit func(pkg, from string)
	visit = func(pkg, from string) {
		if _, ok := seen[pkg]; ok {
			return
		}
		seen[pkg] = from
		assert.False(t, strings.HasPrefix(pkg, modulePath+"/engine"), "%s imports %s", from, pkg)
		p, err := build.ImportDir(filepath.Join(root, strings.TrimPrefix(pkg, modulePath+"/")), 0)
		if err != nil {
			return // another module (guest-sdk) or a directory without Go files
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, modulePath+"/") {
				visit(imp, pkg)
			}
		}
	}
	for _, pkg := range pkgs {
		visit(pkg, "")
	}
}
