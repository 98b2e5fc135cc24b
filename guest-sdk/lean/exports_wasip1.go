//go:build wasip1

// The host calls the functions exported with //go:wasmexport; staticcheck
// does not count that as a use.
//
//lint:file-ignore U1000 exported to the host with //go:wasmexport

package lean

import (
	"errors"
	"runtime"
	"unsafe"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

//go:wasmimport wre call
func hostCall(op, ptr, length uint32) uint64

//go:wasmimport wre log
func hostLog(level, ptr, length uint32)

// buffers are the buffers lent to the host (wre_buffer), newest last. The
// host writes into the newest; older ones stay alive while values of the
// current reconcile may point into them, and are dropped when the next
// reconcile starts.
var buffers [][]byte

// wreABIv2 announces ABI v2.
//
//go:wasmexport wre_abi_v2
func wreABIv2() {}

//go:wasmexport wre_buffer
func wreBuffer(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	buffers = append(buffers, b)
	return addr(b)
}

//go:wasmexport wre_reconcile
func wreReconcile(ptr, length uint32) uint64 {
	if n := len(buffers); n > 1 {
		buffers = append(buffers[:0], buffers[n-1])
	}
	res := reconcileRegistered(flat.View(lent(ptr, length)))
	if len(res) == 0 {
		return 0
	}
	return abi.Pack(addr(res), uint32(len(res)))
}

var instance *Instance

func init() {
	onRegister = func(m Module) {
		var err error
		if instance, err = NewInstance(m, wasmTransport{}); err != nil {
			panic("lean: " + err.Error())
		}
	}
}

// failure is the result record of a reconcile that could not run.
func failure(err error) []byte {
	var b flat.Builder
	b.Reset(abi.ResultSlots)
	b.SetString(abi.ResultSlotError, err.Error())
	b.SetBool(abi.ResultSlotFailed, true)
	return b.Bytes()
}

var lastFailure []byte

func reconcileRegistered(req flat.Record) []byte {
	if instance == nil {
		lastFailure = failure(errors.New("no module registered: call lean.Register from an init function"))
		return lastFailure
	}
	return instance.Reconcile(req)
}

// lent returns the bytes at ptr inside the newest lent buffer, where the
// host writes every message.
func lent(ptr, length uint32) []byte {
	if len(buffers) == 0 {
		return nil
	}
	b := buffers[len(buffers)-1]
	off := uint64(ptr) - uint64(addr(b))
	if off > uint64(len(b)) || off+uint64(length) > uint64(len(b)) {
		return nil
	}
	return b[off : off+uint64(length)]
}

// addr returns the linear-memory address of b's first byte.
func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

type wasmTransport struct{}

func (wasmTransport) Call(op abi.Op, req []byte) []byte {
	p, n := abi.Unpack(hostCall(uint32(op), addr(req), uint32(len(req))))
	runtime.KeepAlive(req)
	return lent(p, n)
}

func (wasmTransport) Log(level abi.Level, msg []byte) {
	hostLog(uint32(level), addr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
}
