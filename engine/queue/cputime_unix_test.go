//go:build unix

package queue_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process has used. On a shared machine it
// is a steadier measure of work than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
