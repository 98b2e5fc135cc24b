package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wre-dev/wre/test/controlplane"
)

// Env is what suites share: the repository, the machine and a local control
// plane started on first use.
type Env struct {
	// Root is the repository root; commands run there.
	Root string
	// Machine describes the machine as a Markdown paragraph.
	Machine string
	// Log receives progress.
	Log io.Writer

	mu sync.Mutex
	cp *controlplane.ControlPlane
}

func newEnv(log io.Writer) (*Env, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return nil, err
	}
	return &Env{Root: root, Machine: describeMachine(), Log: log}, nil
}

// ControlPlane returns the run's local control plane, starting it (and
// building its binaries) on first use.
func (e *Env) ControlPlane(ctx context.Context) (*controlplane.ControlPlane, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cp != nil {
		return e.cp, nil
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{Log: e.Log})
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	e.cp = cp
	return cp, nil
}

// Close stops the control plane if one was started.
func (e *Env) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cp != nil {
		_ = e.cp.Stop()
		e.cp = nil
	}
}

// describeMachine names the CPU, cores, memory, OS and Go version.
func describeMachine() string {
	cpu := firstValue("/proc/cpuinfo", "model name")
	mem := "unknown"
	if kb, err := strconv.ParseFloat(strings.TrimSuffix(firstValue("/proc/meminfo", "MemTotal"), " kB"), 64); err == nil {
		mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
	}
	kernel, _ := exec.Command("uname", "-sr").Output()
	return fmt.Sprintf("Machine: %s, %d cores, %s memory, %s, %s/%s, %s; run on %s.\n",
		strings.TrimSpace(cpu), runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)),
		runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
}

// firstValue returns the value of the first "key: value" line of a /proc file.
func firstValue(path, key string) string {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
