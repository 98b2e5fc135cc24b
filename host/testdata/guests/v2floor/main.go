// Command v2floor is the smallest ABI v2 Go guest: its reconcile does
// nothing. BenchmarkReconcileV2Floor measures what a Go wasmexport entry
// costs on top of the host's floor; the lean SDK's prologue is the rest of
// BenchmarkStatusSync.
package main

import "unsafe"

//lint:file-ignore U1000 exported to the host with //go:wasmexport

var buf = make([]byte, 64<<10)

//go:wasmexport wre_abi_v2
func marker() {}

//go:wasmexport wre_buffer
func buffer(size uint32) uint32 {
	if int(size) > len(buf) {
		buf = make([]byte, size)
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}

//go:wasmexport wre_reconcile
func reconcile(ptr, length uint32) uint64 { return 0 }

func main() {}
