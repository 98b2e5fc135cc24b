package main

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProcKB(t *testing.T) {
	status := []byte("Name:\twre\nVmPeak:\t  200 kB\nVmRSS:\t   51200 kB\nThreads:\t12\n")
	rollup := []byte("55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:               51200 kB\nPss:               40960 kB\nPss_Anon:          30000 kB\n")
	for _, tt := range []struct {
		name, key string
		data      []byte
		want      int64
		err       string
	}{
		{name: "status", data: status, key: "VmRSS", want: 50 << 20},
		{name: "rollup takes Pss, not Pss_Anon", data: rollup, key: "Pss", want: 40 << 20},
		{name: "missing", data: status, key: "Pss", err: "no Pss line"},
		{name: "not kB", data: status, key: "Threads", err: `Threads: want a value in kB, got "12"`},
		{name: "not a number", data: []byte("VmRSS: x kB\n"), key: "VmRSS", err: "VmRSS: strconv.ParseInt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := procKB(tt.data, tt.key)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadMemoryOfThisProcess(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	require.NoError(t, err)
	assert.Greater(t, m.RSS, int64(1<<20), "a Go test binary has more than 1 MiB resident")
	if m.PSS != 0 {
		assert.LessOrEqual(t, m.PSS, m.RSS)
	}
	sum, err := ReadMemorySum([]int{os.Getpid(), os.Getpid()})
	require.NoError(t, err)
	assert.InDelta(t, 2*m.RSS, sum.RSS, float64(m.RSS)/2, "the sum of two reads of one process")
	_, err = ReadMemory(-1)
	assert.Error(t, err)
	assert.Equal(t, "1.5 MiB", MiB(3<<19))
}

func TestParseStatCPU(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
	got, err := parseStatCPU([]byte("4242 (wre (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0\n"))
	require.NoError(t, err)
	assert.Equal(t, 3250*time.Millisecond, got)
	_, err = parseStatCPU([]byte("4242 wre S 1"))
	assert.ErrorContains(t, err, "no command name")
	_, err = parseStatCPU([]byte("4242 (wre) S 1 2"))
	assert.ErrorContains(t, err, "fields after the command name")

	own, err := ReadCPU(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, own, time.Duration(0))
}
