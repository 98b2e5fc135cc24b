//go:build amd64 || arm64 || wasm || 386 || riscv64 || loong64 || ppc64le || mipsle || mips64le

package flat

import "unsafe"

// load64 reads the little-endian u64 at b[off:]. On little-endian machines
// it is one load: cheaper to inline than binary.LittleEndian, which matters
// in wasm guests, where every call is a loop check.
func load64(b []byte, off int) uint64 {
	return *(*uint64)(unsafe.Pointer(unsafe.SliceData(b[off : off+8])))
}
