package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Pinned versions of the components. They must match test/tools/*/go.mod.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.3"
)

// CacheDirEnv overrides the cache directory for built binaries.
const CacheDirEnv = "WRE_CACHE_DIR"

// binary describes one component and how to build it.
type binary struct {
	name    string // file name in BinDir
	toolMod string // directory under test/tools holding its go.mod
	pkg     string // package path to build
	version string // what it is built from, for the progress lines
}

// controlPlaneBinaries are what Start runs; EnsureBinaries builds them.
var controlPlaneBinaries = []binary{
	{name: "etcd", toolMod: "etcd", pkg: "go.etcd.io/etcd/server/v3", version: "etcd " + EtcdVersion},
	{name: "kube-apiserver", toolMod: "kube", pkg: "k8s.io/kubernetes/cmd/kube-apiserver", version: "Kubernetes " + KubernetesVersion},
	{name: "kube-controller-manager", toolMod: "kube", pkg: "k8s.io/kubernetes/cmd/kube-controller-manager", version: "Kubernetes " + KubernetesVersion},
}

// kubectlBinary is built only on demand (EnsureKubectl): neither the
// control plane nor the demo needs it.
var kubectlBinary = binary{name: "kubectl", toolMod: "kube", pkg: "k8s.io/kubernetes/cmd/kubectl", version: "Kubernetes " + KubernetesVersion}

// CacheDir returns the root of wre's cache: $WRE_CACHE_DIR, or
// $HOME/.cache/wre (the user cache directory) when unset.
func CacheDir() (string, error) {
	if dir := os.Getenv(CacheDirEnv); dir != "" {
		return filepath.Abs(dir)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory (set %s): %w", CacheDirEnv, err)
	}
	return filepath.Join(dir, "wre"), nil
}

// BinDir returns the versioned directory holding the control plane binaries.
func BinDir() (string, error) {
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "controlplane", "kubernetes-"+KubernetesVersion+"-etcd-"+EtcdVersion), nil
}

// RepoRoot finds the wre checkout: the nearest parent of the working directory
// that holds test/tools/kube/go.mod, else the checkout this file was built from.
func RepoRoot() (string, error) {
	isRoot := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "test", "tools", "kube", "go.mod"))
		return err == nil
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if isRoot(dir) {
				return dir, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		if dir := filepath.Join(filepath.Dir(file), "..", ".."); isRoot(dir) {
			return filepath.Clean(dir), nil
		}
	}
	return "", errors.New("cannot find the wre checkout (test/tools/kube/go.mod): run from inside it")
}

// EnsureBinaries builds every missing control plane binary into BinDir with
// $GO (default "go") and returns that directory. Progress (at least every
// ProgressInterval) and build output go to log. It is safe to call from
// several processes at once.
func EnsureBinaries(ctx context.Context, log io.Writer) (string, error) {
	return ensure(ctx, log, controlPlaneBinaries)
}

// EnsureKubectl returns the path of a kubectl built from KubernetesVersion
// into BinDir, building it the way EnsureBinaries builds the control plane
// when it is missing. Tests that run documented kubectl commands use it, so
// they need no kubectl on PATH and always talk to the API server with the
// client of its own release.
func EnsureKubectl(ctx context.Context, log io.Writer) (string, error) {
	dir, err := ensure(ctx, log, []binary{kubectlBinary})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, kubectlBinary.name), nil
}

// ProgressInterval is the longest a build of the binaries stays silent.
const ProgressInterval = 20 * time.Second

func ensure(ctx context.Context, log io.Writer, want []binary) (string, error) {
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	if missing(dir, want) == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	// Another process may have built them while this one waited for the lock.
	groups := byToolModule(missing(dir, want))
	if len(groups) == 0 {
		return dir, nil
	}
	p := newProgress(log, len(groups))
	var names []string
	for _, g := range groups {
		for _, b := range g {
			names = append(names, b.name)
		}
	}
	fmt.Fprintf(log, "controlplane: building %s from source into %s, %d go builds in parallel (once; later runs reuse them)\n",
		strings.Join(names, ", "), dir, len(groups))
	// Builds killed half way leave their temporary directories; nobody else
	// builds while this process holds the lock.
	if old, err := filepath.Glob(filepath.Join(dir, ".build-*")); err == nil {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	steps := make([]*stepProgress, len(groups))
	for i, g := range groups {
		steps[i] = p.step(i, g)
	}
	stop := p.start(ctx)
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { errs[i] = build(ctx, root, dir, g, steps[i]) })
	}
	wg.Wait()
	stop()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "controlplane: built %s in %s\n", strings.Join(names, ", "), p.elapsed())
	return dir, nil
}

// missing lists the binaries of want absent from dir.
func missing(dir string, want []binary) []binary {
	var out []binary
	for _, b := range want {
		if fi, err := os.Stat(filepath.Join(dir, b.name)); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			out = append(out, b)
		}
	}
	return out
}

// byToolModule groups bs by tool module, in order of first appearance: one
// go build per module compiles the packages its binaries share once.
func byToolModule(bs []binary) [][]binary {
	var groups [][]binary
	for _, b := range bs {
		i := slices.IndexFunc(groups, func(g []binary) bool { return g[0].toolMod == b.toolMod })
		if i < 0 {
			groups = append(groups, nil)
			i = len(groups) - 1
		}
		groups[i] = append(groups[i], b)
	}
	return groups
}

// build runs one go build for the binaries of one tool module into a
// temporary directory and moves them into dir once all are built.
func build(ctx context.Context, root, dir string, bs []binary, s *stepProgress) error {
	tmp, err := os.MkdirTemp(dir, ".build-"+bs[0].toolMod+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// -v names each package as it is compiled: the progress lines count them.
	args := []string{"build", "-v"}
	if len(bs) == 1 {
		args = append(args, "-o", filepath.Join(tmp, bs[0].name), bs[0].pkg)
	} else {
		// Several packages build into a directory, each named after its
		// last path element, which is the binary's name for these.
		args = append(args, "-o", tmp+string(filepath.Separator))
		for _, b := range bs {
			args = append(args, b.pkg)
		}
	}
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = filepath.Join(root, "test", "tools", bs[0].toolMod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(s, &out), io.MultiWriter(s, &out)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", s.what, err, out.String())
	}
	for _, b := range bs {
		if err := os.Rename(filepath.Join(tmp, b.name), filepath.Join(dir, b.name)); err != nil {
			return fmt.Errorf("install %s: %w", b.name, err)
		}
	}
	s.done()
	return nil
}

// GoEnv names the Go command that EnsureBinaries builds with (the Makefile's
// GO); "go" from PATH when unset.
const GoEnv = "GO"

func goCommand() string {
	if g := os.Getenv(GoEnv); g != "" {
		return g
	}
	return "go"
}

// lockFile takes an exclusive advisory lock on path and returns its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
