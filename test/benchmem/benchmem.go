// Package benchmem measures what the objects a benchmark holds cost the
// process, for memory figures reported as custom benchmark units
// (heap-MiB/instance, rss-MiB/module …): take a Footprint before creating
// them and one after, and divide the difference.
package benchmem

import (
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"
)

// Footprint returns the Go heap in use and the resident set size (0 where
// /proc/self/statm is missing), after a GC that returns freed memory to the
// OS, so that garbage does not count. The RSS also counts what lives outside
// the Go heap: wasm linear memory and compiled code.
func Footprint() (heap, rss int64) {
	debug.FreeOSMemory()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var size, resident int64
		if _, err := fmt.Sscan(string(b), &size, &resident); err == nil {
			rss = resident * int64(os.Getpagesize())
		}
	}
	return int64(ms.HeapInuse), rss
}
