//go:build !unix

package host

// reserveRegion allocates n zeroed bytes on the Go heap where mmap is not
// available. Large allocations take fresh pages from the OS, which become
// resident only when touched.
func reserveRegion(n uint64) ([]byte, error) { return make([]byte, n), nil }

func commit([]byte) error { return nil }

func unmapRegion([]byte) error { return nil }
