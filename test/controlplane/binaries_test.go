package controlplane_test

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/test/controlplane"
)

// goMod is what TestToolModulesPinVersions needs of a go.mod: the required
// versions and the replace targets by module path.
type goMod struct {
	require map[string]string
	replace map[string][2]string // path => {new path, new version}
}

// parseGoMod reads the require and replace directives of a go.mod, single
// or in blocks.
func parseGoMod(t *testing.T, path string) goMod {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	mod := goMod{require: map[string]string{}, replace: map[string][2]string{}}
	add := func(verb string, f []string) {
		switch verb {
		case "require":
			require.Len(t, f, 2, "require %q in %s", f, path)
			mod.require[f[0]] = f[1]
		case "replace": // old [version] => new [version]
			i := slices.Index(f, "=>")
			require.True(t, i > 0 && i+1 < len(f), "replace %q in %s", f, path)
			target := append(f[i+1:], "")
			mod.replace[f[0]] = [2]string{target[0], target[1]}
		}
	}
	block := ""
	for sc := bufio.NewScanner(bytes.NewReader(data)); sc.Scan(); {
		line, _, _ := strings.Cut(sc.Text(), "//")
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case block != "" && f[0] == ")":
			block = ""
		case block != "":
			add(block, f)
		case len(f) == 2 && f[1] == "(":
			block = f[0]
		default:
			add(f[0], f[1:])
		}
	}
	return mod
}

// TestToolModulesPinVersions checks that the tools modules build the versions
// that KubernetesVersion and EtcdVersion (and so BinDir) name.
func TestToolModulesPinVersions(t *testing.T) {
	root, err := controlplane.RepoRoot()
	require.NoError(t, err)

	kube := parseGoMod(t, filepath.Join(root, "test", "tools", "kube", "go.mod"))
	assert.Equal(t, controlplane.KubernetesVersion, kube.require["k8s.io/kubernetes"], "k8s.io/kubernetes")
	staging := "v0" + strings.TrimPrefix(controlplane.KubernetesVersion, "v1") // v1.37.2 -> v0.37.2
	replaced := 0
	for old, target := range kube.replace {
		if strings.HasPrefix(old, "k8s.io/") {
			replaced++
			assert.Equal(t, [2]string{old, staging}, target, "replace %s", old)
		}
	}
	assert.Positive(t, replaced, "the staging modules are replaced")

	etcd := parseGoMod(t, filepath.Join(root, "test", "tools", "etcd", "go.mod"))
	assert.Equal(t, controlplane.EtcdVersion, etcd.require["go.etcd.io/etcd/server/v3"], "go.etcd.io/etcd/server/v3")
}

func TestCacheDir(t *testing.T) {
	t.Run("WRE_CACHE_DIR", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv(controlplane.CacheDirEnv, dir)
		got, err := controlplane.CacheDir()
		require.NoError(t, err)
		assert.Equal(t, dir, got)

		t.Chdir(dir)
		t.Setenv(controlplane.CacheDirEnv, "relative")
		got, err = controlplane.CacheDir()
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(dir, "relative"), got, "made absolute")
	})
	t.Run("unset", func(t *testing.T) {
		t.Setenv(controlplane.CacheDirEnv, "")
		home := t.TempDir()
		t.Setenv("HOME", home)
		t.Setenv("XDG_CACHE_HOME", "")
		got, err := controlplane.CacheDir()
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(home, ".cache", "wre"), got)

		bin, err := controlplane.BinDir()
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(home, ".cache", "wre", "controlplane",
			"kubernetes-"+controlplane.KubernetesVersion+"-etcd-"+controlplane.EtcdVersion), bin)
	})
}

// TestEnsureBinariesUsesGO builds into an empty cache with a fake Go command
// named by $GO; PATH has no go, so "go" from PATH would fail.
func TestEnsureBinariesUsesGO(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	calls := filepath.Join(tmp, "calls")
	fake := filepath.Join(tmp, "fake-go")
	// `fake-go build -o OUT PKG` records its arguments and writes an executable OUT.
	script := "#!/bin/sh\necho \"$*\" >> " + calls + "\necho '#!/bin/sh' > \"$3\"\nchmod +x \"$3\"\n"
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	path := filepath.Join(tmp, "path")
	require.NoError(t, os.Mkdir(path, 0o755))
	chmod, err := exec.LookPath("chmod")
	require.NoError(t, err)
	require.NoError(t, os.Symlink(chmod, filepath.Join(path, "chmod")))

	t.Setenv(controlplane.CacheDirEnv, cache)
	t.Setenv("PATH", path)
	t.Setenv(controlplane.GoEnv, fake)
	dir, err := controlplane.EnsureBinaries(t.Context(), io.Discard)
	require.NoError(t, err)
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		assert.FileExists(t, filepath.Join(dir, name))
	}
	data, err := os.ReadFile(calls)
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(data), "build -o "), "one build per binary:\n%s", data)
	assert.Contains(t, string(data), "k8s.io/kubernetes/cmd/kube-apiserver")
}
