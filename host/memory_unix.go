//go:build unix

package host

import "golang.org/x/sys/unix"

// reserveRegion reserves n bytes of address space, inaccessible and backed by
// neither memory nor swap until committed.
func reserveRegion(n uint64) ([]byte, error) {
	if n == 0 {
		return []byte{}, nil
	}
	return unix.Mmap(-1, 0, int(n), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
}

// commit makes b, pages of a reserved region, readable and writable. The OS
// backs each page with zeroed memory when it is first touched.
func commit(b []byte) error { return unix.Mprotect(b, unix.PROT_READ|unix.PROT_WRITE) }

func unmapRegion(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	return unix.Munmap(b)
}
