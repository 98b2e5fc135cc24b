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

// fakeGo is a Go command for `go build -v -o OUT PKG...`: it records its
// arguments in calls, prints what go build -v prints and writes an executable
// OUT, or one per package into OUT when OUT ends in a slash.
func fakeGo(t *testing.T, dir, calls string) string {
	t.Helper()
	fake := filepath.Join(dir, "fake-go")
	script := `#!/bin/sh
echo "$*" >> ` + calls + `
out=""; pkgs=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    -*) shift ;;
    *) pkgs="$pkgs $1"; shift ;;
  esac
done
echo "go: downloading example.com/dep v1.0.0" >&2
for p in $pkgs; do
  echo "$p" >&2
  case "$out" in
    */) f="$out${p##*/}" ;;
    *) f="$out" ;;
  esac
  echo '#!/bin/sh' > "$f"; chmod +x "$f"
done
`
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	return fake
}

// TestEnsureBinariesUsesGO builds into an empty cache with a fake Go command
// named by $GO; PATH has only what the script needs, no go, so "go" from
// PATH would fail. One go build per tool module builds the binaries that
// share it, and each step is announced with its number.
func TestEnsureBinariesUsesGO(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	calls := filepath.Join(tmp, "calls")
	fake := fakeGo(t, tmp, calls)
	path := filepath.Join(tmp, "path")
	require.NoError(t, os.Mkdir(path, 0o755))
	for _, tool := range []string{"chmod", "basename"} {
		p, err := exec.LookPath(tool)
		require.NoError(t, err)
		require.NoError(t, os.Symlink(p, filepath.Join(path, tool)))
	}

	t.Setenv(controlplane.CacheDirEnv, cache)
	t.Setenv("PATH", path)
	t.Setenv(controlplane.GoEnv, fake)
	var log bytes.Buffer
	dir, err := controlplane.EnsureBinaries(t.Context(), &log)
	require.NoError(t, err, log.String())
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		assert.FileExists(t, filepath.Join(dir, name))
	}
	assert.NoFileExists(t, filepath.Join(dir, "kubectl"), "kubectl is built only on demand")
	data, err := os.ReadFile(calls)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(data), "build -v -o "), "one build per tool module:\n%s", data)
	assert.Contains(t, string(data), "k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager")
	assert.Contains(t, log.String(), "step 1/2: building etcd")
	assert.Contains(t, log.String(), "step 2/2: building kube-apiserver, kube-controller-manager")
	assert.Contains(t, log.String(), "step 2/2 done")
	leftovers, err := filepath.Glob(filepath.Join(dir, ".build-*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers, "temporary build directories are removed")

	kubectl, err := controlplane.EnsureKubectl(t.Context(), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "kubectl"), kubectl)
	assert.FileExists(t, kubectl)
	data, err = os.ReadFile(calls)
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(data), "build -v -o "), "kubectl alone is built:\n%s", data)
	assert.Contains(t, string(data), "k8s.io/kubernetes/cmd/kubectl")

	_, err = controlplane.EnsureBinaries(t.Context(), &log)
	require.NoError(t, err)
	data, err = os.ReadFile(calls)
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(data), "build -v -o "), "present binaries are not built again")
}
