package host

import (
	"fmt"
	"sync"

	"github.com/go-logr/logr"
)

// logBudget bounds the log output of one guest call (a reconcile, or
// _initialize): wre.log lines and stdout/stderr lines together. Lines past
// either bound are dropped and counted; end reports them in one marker line.
// wazero calls the writers on the goroutine running the guest, but the guest
// code of an abandoned instance (TrustedGuests) may still log while the
// reconcile that started it ends, hence the mutex.
type logBudget struct {
	maxLines, maxBytes int

	mu                         sync.Mutex
	lines, bytes               int
	droppedLines, droppedBytes int
}

// take reports whether a line of n bytes may be logged, and counts it either
// way.
func (b *logBudget) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lines+1 > b.maxLines || b.bytes+n > b.maxBytes {
		b.droppedLines++
		b.droppedBytes += n
		return false
	}
	b.lines++
	b.bytes += n
	return true
}

// end starts a new budget and, when lines were dropped from the last one,
// logs one marker line with their count to log and counts them in the
// module's metrics.
func (b *logBudget) end(m *Module, log logr.Logger) {
	b.mu.Lock()
	lines, bytes := b.droppedLines, b.droppedBytes
	b.lines, b.bytes, b.droppedLines, b.droppedBytes = 0, 0, 0, 0
	b.mu.Unlock()
	if lines == 0 {
		return
	}
	m.rt.opts.Metrics.LogDroppedLines.WithLabelValues(m.opts.Name).Add(float64(lines))
	m.rt.opts.Metrics.LogDroppedBytes.WithLabelValues(m.opts.Name).Add(float64(bytes))
	log.Info(fmt.Sprintf("%s %d lines (%d bytes) of guest log output: over the limit of %d lines or %d bytes per reconcile",
		LogDroppedMarker, lines, bytes, b.maxLines, b.maxBytes), "droppedLines", lines, "droppedBytes", bytes)
}

// LogDroppedMarker starts the one log line that replaces the guest log output
// dropped in a reconcile (or _initialize) over ModuleOptions.MaxLogLines or
// MaxLogBytes; the line goes on with the counts.
const LogDroppedMarker = "[wre: dropped]"
