// Command script is a test guest whose behaviour is scripted by its module
// config, so one small build covers the host-call, hostile-guest and pool tests.
// It uses only the standard library and guest-sdk/abi.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host/internal/guestscript"
)

var (
	script     guestscript.Script
	configErr  error
	reconciles int64
	live       = map[uint32][]byte{}
	sink       int
	hoard      [][]byte
)

//go:wasmimport wre call
func hostCall(op, ptr, n uint32) uint64

//go:wasmimport wre log
func hostLog(level, ptr, n uint32)

//go:wasmexport wre_abi_v1
func abiV1() {}

//go:wasmexport wre_alloc
func alloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	p := ptrOf(b)
	live[p] = b
	return p
}

//go:wasmexport wre_free
func free(ptr uint32) { delete(live, ptr) }

func ptrOf(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

// take copies and frees a host-allocated buffer.
func take(packed uint64) []byte {
	ptr, n := abi.Unpack(packed)
	b := append([]byte{}, live[ptr][:n]...)
	free(ptr)
	return b
}

func call(op abi.Op, req *abi.Request) abi.Response {
	msg := req.Marshal()
	var resp abi.Response
	if err := resp.Unmarshal(take(hostCall(uint32(op), ptrOf(msg), uint32(len(msg))))); err != nil {
		panic(err)
	}
	return resp
}

func init() {
	// Reading the config here exercises host calls during _initialize.
	resp := call(abi.OpConfig, &abi.Request{})
	if len(resp.Body) > 0 {
		configErr = json.Unmarshal(resp.Body, &script)
	}
	for script.StuckInit {
		sink++
	}
}

//go:wasmexport wre_reconcile
func reconcile(ptr, n uint32) uint64 {
	var req abi.ReconcileRequest
	if err := req.Unmarshal(take(abi.Pack(ptr, n))); err != nil {
		return respond(abi.ReconcileResponse{Failed: true, Error: err.Error()})
	}
	reconciles++
	if configErr != nil {
		return respond(abi.ReconcileResponse{Failed: true, Error: "config: " + configErr.Error()})
	}
	if err := run(req); err != nil {
		return respond(abi.ReconcileResponse{Failed: true, Error: err.Error()})
	}
	switch {
	case script.ReturnPacked != 0:
		return script.ReturnPacked
	case script.Garbage:
		b := alloc(3)
		return abi.Pack(b, 3)
	case script.Fail != "" || script.Terminal:
		return respond(abi.ReconcileResponse{Failed: true, Error: script.Fail, Terminal: script.Terminal})
	case script.RequeueCount:
		return respond(abi.ReconcileResponse{RequeueAfterNanos: reconciles})
	}
	return 0
}

func respond(r abi.ReconcileResponse) uint64 {
	b := r.Marshal()
	p := alloc(uint32(len(b)))
	copy(live[p], b)
	return abi.Pack(p, uint32(len(b)))
}

func run(rr abi.ReconcileRequest) error {
	var bodies [][]byte
	for i, s := range script.Steps {
		var resp abi.Response
		if s.OnlyFor != "" && s.OnlyFor != rr.Name {
			bodies = append(bodies, nil)
			continue
		}
		switch {
		case s.Panic != "":
			panic(s.Panic)
		case s.Exit != 0:
			os.Exit(s.Exit)
		case s.Loop:
			for {
				sink++
			}
		case s.Spin > 0:
			for i := 0; i < s.Spin; i++ {
				sink += i ^ sink
			}
			continue
		case s.Grow:
			for {
				hoard = append(hoard, make([]byte, 1<<20))
			}
		case s.Alloc > 0:
			hoard = append(hoard, make([]byte, s.Alloc))
			continue
		case s.Print != "":
			for range max(s.Repeat, 1) {
				fmt.Println(s.Print)
				fmt.Fprintln(os.Stderr, s.Print)
			}
			continue
		case s.Log != "":
			msg := []byte(s.Log)
			for range max(s.Repeat, 1) {
				hostLog(uint32(abi.LevelInfo), ptrOf(msg), uint32(len(msg)))
			}
			continue
		case s.LogRaw != nil:
			hostLog(uint32(abi.LevelError), s.LogRaw.Ptr, s.LogRaw.Len)
			continue
		case s.Probe != nil:
			resp = abi.Response{Status: abi.Status{Code: 200}, Body: probe(s.Probe)}
		case s.Raw != nil:
			if err := resp.Unmarshal(take(hostCall(s.Raw.Op, s.Raw.Ptr, s.Raw.Len))); err != nil {
				return err
			}
		default:
			req := *s.Req
			req.Namespace = strings.ReplaceAll(req.Namespace, "$ns", rr.Namespace)
			req.Name = strings.ReplaceAll(req.Name, "$name", rr.Name)
			if s.UseBodyOf != nil {
				req.Body = bodies[*s.UseBodyOf]
			}
			resp = call(s.Op, &req)
			if s.AllPages {
				var err error
				if resp, err = allPages(s, req, resp); err != nil {
					return fmt.Errorf("step %d: %w", i, err)
				}
			}
		}
		bodies = append(bodies, resp.Body)
		want := s.Want
		if want == 0 {
			want = 200
		}
		switch {
		case resp.Code != want:
			return fmt.Errorf("step %d: got %d %s %q, want %d", i, resp.Code, resp.Reason, resp.Message, want)
		case s.WantReason != "" && resp.Reason != s.WantReason:
			return fmt.Errorf("step %d: got reason %s, want %s", i, resp.Reason, s.WantReason)
		case !strings.Contains(string(resp.Body), s.BodyContains):
			return fmt.Errorf("step %d: body %q does not contain %q", i, resp.Body, s.BodyContains)
		case s.WantItems != nil && len(resp.Items) != *s.WantItems:
			return fmt.Errorf("step %d: got %d items, want %d", i, len(resp.Items), *s.WantItems)
		}
		for _, item := range resp.Items {
			if !strings.Contains(string(item), s.ItemsContain) {
				return fmt.Errorf("step %d: item %q does not contain %q", i, item, s.ItemsContain)
			}
		}
	}
	return nil
}

// allPages sends req again with each continue token, from the first
// response on, and returns one response holding the items of every page.
func allPages(s guestscript.Step, req abi.Request, resp abi.Response) (abi.Response, error) {
	all, seen := resp, map[string]bool{}
	all.Items = nil
	for pages := 1; ; pages++ {
		if !resp.OK() {
			return resp, nil // the status checks report it
		}
		for _, item := range resp.Items {
			if seen[string(item)] {
				return resp, fmt.Errorf("page %d repeats an item of an earlier page", pages)
			}
			seen[string(item)] = true
		}
		all.Items = append(all.Items, resp.Items...)
		if resp.Continue == "" {
			if s.WantPages != nil && pages != *s.WantPages {
				return resp, fmt.Errorf("got %d pages, want %d", pages, *s.WantPages)
			}
			all.Continue = ""
			return all, nil
		}
		if pages == 1000 {
			return resp, fmt.Errorf("still a continue token after %d pages", pages)
		}
		req.Continue = resp.Continue
		resp = call(s.Op, &req)
	}
}

// probe tries what a guest should not be able to do and reports what it saw.
func probe(p *guestscript.Probe) []byte {
	r := guestscript.ProbeReport{Args: os.Args, Env: os.Environ(), Files: map[string]string{}, Descriptors: []int{}}
	for _, f := range p.Files {
		b, err := os.ReadFile(f)
		r.Files[f] = fmt.Sprintf("read %d bytes", len(b))
		if err != nil {
			r.Files[f] = err.Error()
		}
	}
	for fd := 3; fd < 64; fd++ {
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil {
			r.Descriptors = append(r.Descriptors, fd)
		}
	}
	report, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	cm, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]string{"name": p.Name},
		"data":     map[string]string{"report": string(report)},
	})
	if err != nil {
		panic(err)
	}
	return cm
}

func main() {}
