// Package benchcpu reports the CPU time the process uses per benchmark
// operation, as the custom unit cpu-ns/op. On a shared, loaded machine wall
// time (ns/op) includes the time other processes held the cores; CPU time is
// the steadier measure of the work done. It covers every goroutine of the
// process (including those a benchmark starts), so it is meaningful for
// benchmarks whose work stays in the process, like wasm guests run by wazero.
package benchcpu

import (
	"testing"
	"time"
)

// Start returns a function that reports the CPU time used since Start,
// divided by b.N, as cpu-ns/op. Call Start after setup, right before the
// measured loop, and the returned function right after it. On platforms
// without a process CPU clock nothing is reported.
func Start(b *testing.B) (report func()) {
	start := processCPU()
	return func() {
		if used := processCPU() - start; used > 0 && b.N > 0 {
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// processCPU returns the user plus system CPU time the process has used, or
// 0 where it is not available.
func processCPU() time.Duration { return cpuTime() }
