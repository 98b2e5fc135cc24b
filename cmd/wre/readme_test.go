package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/test/controlplane"
)

// readmeBlocks returns the ```sh blocks of the README that follow a
// `<!-- readme-test: NAME -->` marker, by name.
func readmeBlocks(t *testing.T) (root string, blocks map[string]string) {
	t.Helper()
	root, err := controlplane.RepoRoot()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	blocks = map[string]string{}
	for _, m := range regexp.MustCompile("(?s)<!-- readme-test: ([a-z-]+) -->\n```sh\n(.*?)```").FindAllStringSubmatch(string(data), -1) {
		require.NotContains(t, blocks, m[1], "two README blocks named %s", m[1])
		blocks[m[1]] = m[2]
	}
	return root, blocks
}

// runBlock runs a README block verbatim with bash (-e, -o pipefail) in dir.
func runBlock(t *testing.T, dir, block string, env []string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "bash", "-euo", "pipefail", "-c", block)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "README block failed:\n%s\noutput:\n%s", block, out)
	return string(out)
}

// withEnv returns the environment with PATH led by dirs and vars set.
func withEnv(dirs []string, vars ...string) []string {
	env := append(os.Environ(), "PATH="+strings.Join(append(dirs, os.Getenv("PATH")), string(os.PathListSeparator)))
	return append(env, vars...)
}

// TestReadmeInstall runs the README's install block: `make install` into a
// GOBIN of the test's own, then `wre version` from there.
func TestReadmeInstall(t *testing.T) {
	root, blocks := readmeBlocks(t)
	require.Contains(t, blocks, "install")
	gobin := t.TempDir()
	out := runBlock(t, root, blocks["install"], withEnv([]string{gobin}, "GOBIN="+gobin))
	assert.FileExists(t, filepath.Join(gobin, "wre"))
	assert.Contains(t, out, "installed "+filepath.Join(gobin, "wre"))
	assert.Regexp(t, `(?m)^wre \S+ \(.*go1\.`, out, "wre version of the installed binary")
}

// TestReadmeShipModule runs the README's blocks for shipping a module,
// verbatim, with the wre of this checkout and a kubectl of the control
// plane's own release on PATH, against the package's control plane: build
// and inspect, ship over a version that `wre package --apply` shipped (as
// `make demo` does), ship a second version over the first, then remove the
// module. Every step must succeed without forcing conflicts.
func TestReadmeShipModule(t *testing.T) {
	root, blocks := readmeBlocks(t)
	for _, name := range []string{"build", "ship", "remove"} {
		require.Contains(t, blocks, name, "README block %s", name)
	}
	kubectl, err := controlplane.EnsureKubectl(t.Context(), os.Stderr)
	require.NoError(t, err)
	bin := t.TempDir()
	require.NoError(t, os.Symlink(buildWre(t), filepath.Join(bin, "wre")))
	require.NoError(t, os.Symlink(kubectl, filepath.Join(bin, "kubectl")))
	// A directory of its own, where modules/ (and guest-sdk/, which the
	// modules' go.mod replaces) are the checkout's, so the README's relative
	// paths work and what the blocks write stays out of the checkout.
	work := t.TempDir()
	for _, d := range []string{"modules", "guest-sdk"} {
		require.NoError(t, os.Symlink(filepath.Join(root, d), filepath.Join(work, d)))
	}
	env := withEnv([]string{bin}, "KUBECONFIG="+cp.KubeconfigPath())

	ctx := t.Context()
	client := kubernetes.NewForConfigOrDie(cp.Config())
	const ns = "wre-system"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().ConfigMaps(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: modules.LabelModule + "=status-sync"})
	})
	shipped := func() string {
		t.Helper()
		list, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: modules.LabelModule + "=status-sync"})
		require.NoError(t, err)
		digests := map[string]bool{}
		for _, cm := range list.Items {
			digests[cm.Annotations[modules.AnnotationDigest]] = true
		}
		require.Len(t, digests, 1, "the module's ConfigMaps carry one version")
		for d := range digests {
			return d
		}
		return ""
	}
	wasmPath := filepath.Join(work, "status-sync.wasm")
	digestOf := func() string {
		wasm, err := os.ReadFile(wasmPath)
		require.NoError(t, err)
		return modules.Digest(wasm)
	}

	out := runBlock(t, work, blocks["build"], env)
	assert.Contains(t, out, "problems:  none")
	built := digestOf()

	// An earlier version, shipped the way `make demo` ships modules.
	earlier := filepath.Join(work, "earlier.wasm")
	copyWithCustomSection(t, wasmPath, earlier, "earlier")
	code, _, stderr := wre(t, "package", "--apply", "--namespace", ns, "--kubeconfig", cp.KubeconfigPath(),
		"--manifest", filepath.Join(root, "modules/status-sync/module.yaml"), earlier)
	require.Equal(t, exitOK, code, stderr)
	require.NotEqual(t, built, shipped())

	out = runBlock(t, work, blocks["ship"], env)
	assert.Contains(t, out, "serverside-applied")
	assert.Equal(t, built, shipped(), "the README's line ships over a version of `wre package --apply`")

	// A second version over the first.
	copyWithCustomSection(t, wasmPath, wasmPath, "second")
	second := digestOf()
	require.NotEqual(t, built, second)
	runBlock(t, work, blocks["ship"], env)
	assert.Equal(t, second, shipped(), "a second version ships over the first")

	// And `wre package --apply` over the README's.
	code, _, stderr = wre(t, "package", "--apply", "--namespace", ns, "--kubeconfig", cp.KubeconfigPath(),
		"--manifest", filepath.Join(root, "modules/status-sync/module.yaml"), earlier)
	require.Equal(t, exitOK, code, stderr)

	runBlock(t, work, blocks["remove"], env)
	list, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: modules.LabelModule + "=status-sync"})
	require.NoError(t, err)
	assert.Empty(t, list.Items, "the README's delete removes every ConfigMap of the module")
}

// copyWithCustomSection writes src plus a wasm custom section named name to
// dst: a valid module with another digest, i.e. a new version.
func copyWithCustomSection(t *testing.T, src, dst, name string) {
	t.Helper()
	wasm, err := os.ReadFile(src)
	require.NoError(t, err)
	// Custom section: id 0, LEB128 size, LEB128 name length, name.
	body := binary.AppendUvarint(nil, uint64(len(name)))
	body = append(body, name...)
	section := append([]byte{0}, binary.AppendUvarint(nil, uint64(len(body)))...)
	out := append(bytes.Clone(wasm), append(section, body...)...)
	require.NoError(t, os.WriteFile(dst, out, 0o644))
}

// TestReadmePathsExist checks that every file or folder of the repository
// the README names (dashboards, docs, deploy, modules, …) exists.
func TestReadmePathsExist(t *testing.T) {
	root, err := controlplane.RepoRoot()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	text := string(data)
	refs := regexp.MustCompile(`\b(?:cmd|engine|host|guest-sdk|modules|deploy|dashboards|test|docs)/[A-Za-z0-9_./-]*[A-Za-z0-9_]`).FindAllStringIndex(text, -1)
	require.NotEmpty(t, refs)
	var dashboards int
	for _, r := range refs {
		p := text[r[0]:r[1]]
		if strings.HasSuffix(text[:r[0]], "port-forward ") {
			continue // kubectl's TYPE/NAME (deploy/wre), not a path
		}
		if strings.HasPrefix(p, "dashboards/") {
			dashboards++
		}
		_, err := os.Stat(filepath.Join(root, p))
		assert.NoError(t, err, "the README names %s", p)
	}
	assert.Positive(t, dashboards, "the README names the dashboards by path")
}
