package controlplane

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one component running in its own process group.
type process struct {
	name     string
	path     string
	args     []string
	logPath  string
	detached bool // survive this process (new session, no parent-death signal)

	cmd       *exec.Cmd
	logOffset int64 // size of the log when this run started
	done      chan struct{}
	waitErr   error
}

func (p *process) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", p.name, err)
	}
	// The log is shared with earlier runs (a restart, a retried Start); remember
	// where this run's output begins.
	if p.logOffset, err = logf.Seek(0, io.SeekEnd); err != nil {
		logf.Close()
		return fmt.Errorf("open %s log: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if p.detached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		// Own process group so that stop reaches every child; SIGKILL when the
		// test process dies, so that even a crashed test leaks nothing.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return nil
}

// running reports whether the process has been started and not yet exited.
func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// pid returns the process id (also its process group id), or 0.
func (p *process) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// the group and waits for the process to be reaped.
func (p *process) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	pgid := p.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, pgid)
		}
	}
	// Children that ignored SIGTERM must not outlive their leader.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// exitedWith reports whether the process has exited and its output of this run
// contains s.
func (p *process) exitedWith(s string) bool {
	if p == nil || p.cmd == nil || p.running() {
		return false
	}
	f, err := os.Open(p.logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	out, err := io.ReadAll(io.NewSectionReader(f, p.logOffset, 1<<62))
	return err == nil && strings.Contains(string(out), s)
}

// exited describes how the process ended, with the tail of its log.
func (p *process) exited() error {
	return fmt.Errorf("%s exited: %v\n%s", p.name, p.waitErr, Tail(p.logPath, 30))
}

// killGroup stops a detached process group by id: SIGTERM, grace, SIGKILL.
// It does nothing unless the leader's command line mentions dir, the control
// plane directory that every component's flags name: after a reboot the pid
// may belong to an unrelated process.
func killGroup(pgid int, dir string, grace time.Duration) {
	if pgid <= 0 || !mentionsDir(cmdline(pgid), dir) {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !groupAlive(pgid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// groupAlive reports whether any process of the group still exists.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// cmdline returns /proc/<pid>/cmdline (arguments separated by NUL bytes); it
// is empty when the process does not exist or is a zombie.
func cmdline(pid int) []byte {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return data
}

// mentionsDir reports whether an argument of cmdline names dir or a path
// inside it (dir is absolute and clean).
func mentionsDir(cmdline []byte, dir string) bool {
	s := string(cmdline)
	for i := strings.Index(s, dir); i >= 0; {
		if end := i + len(dir); end == len(s) || s[end] == '/' || s[end] == 0 {
			return true
		}
		j := strings.Index(s[i+1:], dir)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// dirsInUse returns those of dirs that the command line of some running
// process mentions.
func dirsInUse(dirs []string) (map[string]bool, error) {
	used := map[string]bool{}
	err := eachProcess(func(pid int, cl []byte) {
		for _, d := range dirs {
			if !used[d] && mentionsDir(cl, d) {
				used[d] = true
			}
		}
	})
	return used, err
}

// componentGroups returns the process group leaders whose command line names
// dir: the components of the control plane in dir, whoever started them, in
// stopping order (controller manager, API server, etcd, anything else).
func componentGroups(dir string) ([]int, error) {
	order := map[string]int{"kube-controller-manager": 0, "kube-apiserver": 1, "etcd": 2}
	var pids []int
	err := eachProcess(func(pid int, cl []byte) {
		if mentionsDir(cl, dir) && processGroup(pid) == pid {
			pids = append(pids, pid)
		}
	})
	rank := func(pid int) int {
		name, _, _ := strings.Cut(string(cmdline(pid)), "\x00")
		if r, ok := order[filepath.Base(name)]; ok {
			return r
		}
		return len(order)
	}
	slices.SortStableFunc(pids, func(a, b int) int { return rank(a) - rank(b) })
	return pids, err
}

// eachProcess calls f with the id and command line of every process.
func eachProcess(f func(pid int, cmdline []byte)) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f(pid, cmdline(pid))
	}
	return nil
}

// processGroup returns the process group id of pid from /proc/<pid>/stat, or
// 0 when the process is gone.
func processGroup(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 3 {
		return 0
	}
	pgrp, _ := strconv.Atoi(fields[2])
	return pgrp
}

// Tail returns the last n lines of a file (a component or engine log), for
// error messages.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
