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
	"syscall"
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
}

var binaries = []binary{
	{name: "etcd", toolMod: "etcd", pkg: "go.etcd.io/etcd/server/v3"},
	{name: "kube-apiserver", toolMod: "kube", pkg: "k8s.io/kubernetes/cmd/kube-apiserver"},
	{name: "kube-controller-manager", toolMod: "kube", pkg: "k8s.io/kubernetes/cmd/kube-controller-manager"},
}

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
// $GO (default "go") and returns that directory. Build output goes to log. It is safe to call from
// several processes at once.
func EnsureBinaries(ctx context.Context, log io.Writer) (string, error) {
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	if missing(dir) == nil {
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
	for _, b := range missing(dir) {
		if err := build(ctx, root, dir, b, log); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// missing lists the binaries absent from dir.
func missing(dir string) []binary {
	var out []binary
	for _, b := range binaries {
		if fi, err := os.Stat(filepath.Join(dir, b.name)); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			out = append(out, b)
		}
	}
	return out
}

func build(ctx context.Context, root, dir string, b binary, log io.Writer) error {
	final := filepath.Join(dir, b.name)
	tmp := final + ".tmp"
	fmt.Fprintf(log, "controlplane: building %s (%s) into %s\n", b.name, b.pkg, dir)
	cmd := exec.CommandContext(ctx, goCommand(), "build", "-o", tmp, b.pkg)
	cmd.Dir = filepath.Join(root, "test", "tools", b.toolMod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(log, &out), io.MultiWriter(log, &out)
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("build %s: %w\n%s", b.name, err, out.String())
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("install %s: %w", b.name, err)
	}
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
