package controlplane_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/test/controlplane"
)

// crashHelperEnv makes TestCrashHelper crash; TestPanickedTestDirIsSwept sets
// it for a child process.
const crashHelperEnv = "WRE_CONTROLPLANE_CRASH_HELPER"

// TestCrashHelper is no test of its own: in the child process that
// TestPanickedTestDirIsSwept starts, it prints the package control plane's
// directory and process ids and panics, so that RunMain's Stop never runs.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(crashHelperEnv) == "" {
		return
	}
	os.Stdout.WriteString("dir " + cp.Dir() + "\n")
	for _, pid := range cp.PIDs() {
		os.Stdout.WriteString("pid " + strconv.Itoa(pid) + "\n")
	}
	panic("crash helper: a test panics")
}

// TestPanickedTestDirIsSwept runs a test binary whose test panics: its
// components die with it, its directory stays until a sweep (the next Start)
// removes it, and the sweep leaves a live control plane's directory alone.
func TestPanickedTestDirIsSwept(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child fails\n%s", stderr.String())
	require.NotZero(t, exit.ExitCode())

	var dir string
	var pids []int
	for sc := bufio.NewScanner(&stdout); sc.Scan(); {
		if d, ok := strings.CutPrefix(sc.Text(), "dir "); ok {
			dir = d
		} else if p, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, err := strconv.Atoi(p)
			require.NoError(t, err)
			pids = append(pids, pid)
		}
	}
	require.NotEmpty(t, dir, "the child printed its directory\n%s", stderr.String())
	require.Len(t, pids, 3, "the child printed its components")
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	for _, pid := range pids {
		assert.Eventually(t, func() bool { return gone(pid) }, 5*time.Second, 50*time.Millisecond,
			"component %d died with the child", pid)
	}
	require.DirExists(t, dir, "nothing removed the crashed child's directory")

	var log bytes.Buffer
	removed := controlplane.SweepStaleDirs(filepath.Dir(dir), &log)
	assert.Contains(t, removed, dir)
	assert.NoDirExists(t, dir, "the sweep removed the dead child's directory")
	assert.Contains(t, log.String(), "removed stale "+dir)
	assert.NotContains(t, removed, cp.Dir())
	assert.DirExists(t, cp.Dir(), "the sweep spares this process's live control plane")
	assert.FileExists(t, cp.KubeconfigPath())
}

// TestSweepStaleDirs covers the rules for each kind of directory.
func TestSweepStaleDirs(t *testing.T) {
	root := t.TempDir()
	old := time.Now().Add(-11 * time.Minute)
	mkdir := func(name string, lock bool, mtime time.Time) string {
		dir := filepath.Join(root, name)
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "etcd.log"), nil, 0o644))
		if lock {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".lock"), nil, 0o644))
		}
		require.NoError(t, os.Chtimes(dir, mtime, mtime))
		return dir
	}
	dead := mkdir("wre-controlplane-dead", true, time.Now())
	live := mkdir("wre-controlplane-live", true, old)
	legacy := mkdir("wre-controlplane-use", false, old) // a prefix of "used"
	fresh := mkdir("wre-controlplane-fresh", false, time.Now())
	used := mkdir("wre-controlplane-used", false, old)
	usedLocked := mkdir("wre-controlplane-usedlocked", true, old)
	other := mkdir("other-dir", true, old)
	require.NoError(t, os.WriteFile(filepath.Join(root, "wre-controlplane-file"), nil, 0o644))

	// A live owner holds the lock (flock conflicts across open files, also in
	// one process).
	f, err := os.Open(filepath.Join(live, ".lock"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))

	// Running processes name "used" and "usedlocked" in their arguments, as
	// components do; that "use" is a prefix of both must not count.
	for _, dir := range []string{used, usedLocked} {
		sleep := exec.Command("sh", "-c", "sleep 30; :", dir+"/etcd")
		require.NoError(t, sleep.Start())
		t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	}

	var log bytes.Buffer
	removed := controlplane.SweepStaleDirs(root, &log)
	assert.ElementsMatch(t, []string{dead, legacy}, removed, "log:\n%s", log.String())
	for _, dir := range []string{dead, legacy} {
		assert.NoDirExists(t, dir)
	}
	for _, dir := range []string{live, fresh, used, usedLocked, other} {
		assert.DirExists(t, dir)
	}
	assert.Contains(t, log.String(), "keep "+used+": a running process uses it")
}

// gone reports whether process pid no longer runs (a zombie counts as gone).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || containsState(string(data), 'Z')
}
