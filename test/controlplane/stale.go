package controlplane

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// dirPrefix names the temporary directories that Start creates.
const dirPrefix = "wre-controlplane-"

// lockName is the file in a control plane directory that its owner holds an
// exclusive flock on while the control plane runs.
const lockName = ".lock"

// staleAge is how old a directory without a lock file must be before a sweep
// removes it: directories from before the lock file existed, never one that a
// concurrent Start has just created and not locked yet.
const staleAge = 10 * time.Minute

// lockDir creates dir/.lock already locked: the lock file is created and
// flocked under a temporary name and then renamed, so that no sweep ever sees
// an unlocked lock file of a live control plane. The lock lasts until the
// returned file is closed or the process dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, lockName+"-*")
	if err != nil {
		return nil, fmt.Errorf("create lock in %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, lockName)); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// sweepStaleDirs removes the control plane directories under root
// (root/wre-controlplane-*) whose owner is gone, reports each outcome to log
// and returns the removed directories. A directory is removed when
//   - its .lock can be flocked (the owning process died: the kernel released
//     its lock), or it has no .lock and was last modified more than ten
//     minutes ago (left by an older version), and
//   - no running process mentions it on its command line (a detached control
//     plane, or one started by an older version, whose components still run).
//
// A directory whose lock a live process holds is never removed.
func sweepStaleDirs(root string, log io.Writer) []string {
	matches, err := filepath.Glob(filepath.Join(root, dirPrefix+"*"))
	if err != nil || len(matches) == 0 {
		return nil
	}
	var candidates []string
	var locks []*os.File
	defer func() {
		for _, f := range locks {
			f.Close()
		}
	}()
	for _, dir := range matches {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, lockName))
		switch {
		case err == nil:
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
				f.Close() // a live control plane holds it
				continue
			}
			locks = append(locks, f) // held until removed: keeps a concurrent sweep out
		case errors.Is(err, fs.ErrNotExist):
			if time.Since(fi.ModTime()) < staleAge {
				continue
			}
		default:
			fmt.Fprintf(log, "controlplane: keep %s: %v\n", dir, err)
			continue
		}
		candidates = append(candidates, dir)
	}
	if len(candidates) == 0 {
		return nil
	}
	inUse, err := dirsInUse(candidates)
	if err != nil {
		fmt.Fprintf(log, "controlplane: keep stale directories: %v\n", err)
		return nil
	}
	var removed []string
	for _, dir := range candidates {
		if inUse[dir] {
			fmt.Fprintf(log, "controlplane: keep %s: a running process uses it\n", dir)
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(log, "controlplane: remove stale %s: %v\n", dir, err)
			continue
		}
		fmt.Fprintf(log, "controlplane: removed stale %s (its owner is gone)\n", dir)
		removed = append(removed, dir)
	}
	return removed
}
