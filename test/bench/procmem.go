package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Memory is the resident memory of one process or the sum over several.
type Memory struct {
	// RSS is the resident set size (VmRSS) in bytes: every page the process
	// maps that is in memory, shared ones counted in full.
	RSS int64
	// PSS is the proportional set size in bytes: shared pages divided among
	// the processes sharing them, so the PSS of several processes adds up to
	// what they use together. 0 when the kernel has no smaps_rollup.
	PSS int64
}

// Add returns the sum of m and o.
func (m Memory) Add(o Memory) Memory { return Memory{RSS: m.RSS + o.RSS, PSS: m.PSS + o.PSS} }

// ReadMemory reads the memory of process pid from /proc/PID/status (VmRSS)
// and /proc/PID/smaps_rollup (Pss), which a process may read of its own
// children.
func ReadMemory(pid int) (Memory, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	if m.RSS, err = procKB(status, "VmRSS"); err != nil {
		return Memory{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil // kernel older than 4.14
	}
	if err != nil {
		return Memory{}, err
	}
	if m.PSS, err = procKB(rollup, "Pss"); err != nil {
		return Memory{}, fmt.Errorf("/proc/%d/smaps_rollup: %w", pid, err)
	}
	return m, nil
}

// procKB returns the value of the first "key: N kB" line of a /proc file in
// bytes.
func procKB(data []byte, key string) (int64, error) {
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || k != key {
			continue
		}
		num, ok := strings.CutSuffix(strings.TrimSpace(v), " kB")
		if !ok {
			return 0, fmt.Errorf("%s: want a value in kB, got %q", key, strings.TrimSpace(v))
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", key, err)
		}
		return kb << 10, nil
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s line", key)
}

// ReadMemorySum reads the memory of every pid and returns the sum.
func ReadMemorySum(pids []int) (Memory, error) {
	var sum Memory
	for _, pid := range pids {
		m, err := ReadMemory(pid)
		if err != nil {
			return Memory{}, err
		}
		sum = sum.Add(m)
	}
	return sum, nil
}

// MiB formats bytes as mebibytes with one decimal.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// userHZ is the unit of the CPU times in /proc/PID/stat: the kernel's
// USER_HZ, 100 on every architecture Linux runs Go on.
const userHZ = 100

// ReadCPU returns the CPU time (user + system, all threads) process pid has
// used so far, from /proc/PID/stat, at a resolution of 10 ms.
func ReadCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	d, err := parseStatCPU(data)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return d, nil
}

// parseStatCPU returns utime + stime (fields 14 and 15) of a /proc/PID/stat
// line. The command name (field 2) may hold spaces and parentheses, so the
// fields are counted from its last ')'.
func parseStatCPU(data []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] { // fields 14 (utime) and 15 (stime), counted from 1 with pid and comm
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
