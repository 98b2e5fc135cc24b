// Command getdeploy is a benchmark guest: each reconcile gets the Deployment
// being reconciled N times in the encoding named by its config and decodes it
// into the k8s.io/api type, as a Go guest would.
package main

import (
	"encoding/json"
	"strconv"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

type config struct {
	Accept string `json:"accept"`
	N      int    `json:"n"`
}

var (
	cfg  config
	live = map[uint32][]byte{}
)

//go:wasmimport wre call
func hostCall(op, ptr, n uint32) uint64

//go:wasmexport wre_abi_v1
func abiV1() {}

//go:wasmexport wre_alloc
func alloc(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	p := uint32(uintptr(unsafe.Pointer(&b[0])))
	live[p] = b
	return p
}

//go:wasmexport wre_free
func free(ptr uint32) { delete(live, ptr) }

func call(op abi.Op, req *abi.Request) abi.Response {
	msg := append(req.Marshal(), 0) // never empty; the extra byte is not sent
	ptr, n := abi.Unpack(hostCall(uint32(op), uint32(uintptr(unsafe.Pointer(&msg[0]))), uint32(len(msg)-1)))
	var resp abi.Response
	if err := resp.Unmarshal(live[ptr][:n]); err != nil {
		panic(err)
	}
	free(ptr)
	return resp
}

func init() {
	if err := json.Unmarshal(call(abi.OpConfig, &abi.Request{}).Body, &cfg); err != nil {
		panic(err)
	}
}

//go:wasmexport wre_reconcile
func reconcile(ptr, n uint32) uint64 {
	var rr abi.ReconcileRequest
	if err := rr.Unmarshal(live[ptr][:n]); err != nil {
		panic(err)
	}
	free(ptr)
	req := &abi.Request{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment",
		Namespace: rr.Namespace, Name: rr.Name, Accept: cfg.Accept}
	replicas := int32(0)
	for range cfg.N {
		resp := call(abi.OpGet, req)
		if resp.Code != 200 {
			panic(strconv.Itoa(int(resp.Code)) + " " + resp.Message)
		}
		var d appsv1.Deployment
		var err error
		if resp.ContentType == abi.ContentTypeProtobuf {
			err = d.Unmarshal(resp.Body)
		} else {
			err = json.Unmarshal(resp.Body, &d)
		}
		if err != nil {
			panic(err)
		}
		replicas += *d.Spec.Replicas
	}
	if replicas != int32(cfg.N)*3 {
		panic("wrong replicas " + strconv.Itoa(int(replicas)))
	}
	return 0
}

func main() {}
