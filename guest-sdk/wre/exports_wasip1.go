//go:build wasip1

// The host calls the functions exported with //go:wasmexport; staticcheck
// does not count that as a use.
//
//lint:file-ignore U1000 exported to the host with //go:wasmexport

package wre

import (
	"errors"
	"runtime"
	"unsafe"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

//go:wasmimport wre call
func hostCall(op, ptr, length uint32) uint64

//go:wasmimport wre log
func hostLog(level, ptr, length uint32)

// allocs keeps every buffer handed to the host alive until wre_free (or until
// the guest takes a buffer the host filled). Linear memory is not moved by the
// Go garbage collector, so the address stays valid.
var allocs = map[uint32][]byte{}

// wreABIv1 announces ABI v1.
//
//go:wasmexport wre_abi_v1
func wreABIv1() {}

//go:wasmexport wre_alloc
func wreAlloc(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	p := addr(b)
	allocs[p] = b[:size]
	return p
}

//go:wasmexport wre_free
func wreFree(ptr uint32) { delete(allocs, ptr) }

//go:wasmexport wre_reconcile
func wreReconcile(ptr, length uint32) uint64 {
	resp := reconcileRegistered(take(ptr, length))
	if len(resp) == 0 {
		return 0 // success, nothing to requeue (docs/abi.md §2)
	}
	p := wreAlloc(uint32(len(resp)))
	copy(allocs[p], resp)
	return abi.Pack(p, uint32(len(resp)))
}

var instance *Instance

// reconcileRegistered runs the registered module, instantiating it with the
// wasm transport on first use.
func reconcileRegistered(req []byte) []byte {
	if registered == nil {
		return failure(errors.New("no module registered: call wre.Register from an init function"))
	}
	if instance == nil {
		var err error
		if instance, err = registered.Instantiate(wasmTransport{}); err != nil {
			return failure(err)
		}
	}
	return instance.Reconcile(req)
}

// addr returns the linear-memory address of b's first byte.
func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// take returns the buffer at ptr that the host filled and releases it.
func take(ptr, length uint32) []byte {
	b, ok := allocs[ptr]
	if !ok || int(length) > cap(b) {
		return nil
	}
	delete(allocs, ptr)
	return b[:length]
}

type wasmTransport struct{}

func (wasmTransport) Call(op abi.Op, req []byte) ([]byte, error) {
	p, n := abi.Unpack(hostCall(uint32(op), addr(req), uint32(len(req))))
	// The host may call wre_alloc meanwhile, which may collect garbage.
	runtime.KeepAlive(req)
	resp := take(p, n)
	if resp == nil {
		return nil, errors.New("host returned no response for " + op.String())
	}
	return resp, nil
}

func (wasmTransport) Log(level abi.Level, msg []byte) {
	hostLog(uint32(level), addr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
}
