// Package guestscript defines the config of the script test guest
// (host/testdata/guests/script): a list of steps that the guest runs on every
// reconcile, so one small build covers host calls, hostile behaviour and the
// pool. It imports only the standard library and guest-sdk/abi so that the
// guest builds fast.
package guestscript

import "github.com/wre-dev/wre/guest-sdk/abi"

// Step is one action of a reconcile; exactly one of its action fields is set.
type Step struct {
	Op  abi.Op       `json:"op,omitempty"`
	Req *abi.Request `json:"req,omitempty"` // "$ns" and "$name" become the reconciled object's
	// UseBodyOf sends the response body of an earlier step as the request body.
	UseBodyOf *int `json:"useBodyOf,omitempty"`

	Want         int32  `json:"want,omitempty"` // expected status code; defaults to 200
	WantReason   string `json:"wantReason,omitempty"`
	BodyContains string `json:"bodyContains,omitempty"`
	WantItems    *int   `json:"wantItems,omitempty"`
	ItemsContain string `json:"itemsContain,omitempty"` // every list item contains it

	// AllPages makes a list step follow its continue tokens to the end;
	// WantItems then counts the items of every page, and a duplicate item
	// fails the step.
	AllPages  bool `json:"allPages,omitempty"`
	WantPages *int `json:"wantPages,omitempty"` // with AllPages

	Raw    *RawCall `json:"raw,omitempty"`    // wre.call with these raw arguments
	LogRaw *RawCall `json:"logRaw,omitempty"` // wre.log with these raw pointer and length
	Log    string   `json:"log,omitempty"`    // wre.log at info
	Print  string   `json:"print,omitempty"`  // a line to stdout and to stderr
	Repeat int      `json:"repeat,omitempty"` // runs a Log or Print step this many times (a log storm)
	Panic  string   `json:"panic,omitempty"`
	Loop   bool     `json:"loop,omitempty"`  // spin forever
	Spin   int      `json:"spin,omitempty"`  // spin this many iterations
	Grow   bool     `json:"grow,omitempty"`  // allocate until memory runs out
	Alloc  int      `json:"alloc,omitempty"` // make one []byte of this many bytes
	Exit   int      `json:"exit,omitempty"`  // os.Exit with this code
	Probe  *Probe   `json:"probe,omitempty"`

	// OnlyFor runs the step only when the reconciled object has this name, so
	// that one module can be slow for one object and quick for the others.
	OnlyFor string `json:"onlyFor,omitempty"`
}

// Probe looks at what the sandbox lets a guest reach. The step's body (for
// UseBodyOf) is a JSON ConfigMap named Name whose data key "report" holds the
// ProbeReport.
type Probe struct {
	Name  string   `json:"name"`
	Files []string `json:"files,omitempty"` // paths to os.ReadFile
}

// ProbeReport is what a Probe step saw.
type ProbeReport struct {
	Args []string `json:"args"` // os.Args
	Env  []string `json:"env"`  // os.Environ()
	// Files maps each path to the error reading it, or to "read N bytes".
	Files map[string]string `json:"files"`
	// Descriptors are the file descriptors from 3 to 63 that are open:
	// preopened directories, the only way to a filesystem, or preopened
	// sockets, the only way to a network (WASI preview 1 cannot open a
	// socket; Go's net.Dial on wasip1 is an in-process fake).
	Descriptors []int `json:"descriptors"`
}

// RawCall holds the raw arguments of a host function call.
type RawCall struct{ Op, Ptr, Len uint32 }

// Script is the module config of the script guest.
type Script struct {
	Steps []Step `json:"steps"`
	// RequeueCount requeues after as many nanoseconds as the instance has run
	// reconciles, which makes instance recycling observable.
	RequeueCount bool   `json:"requeueCount,omitempty"`
	Fail         string `json:"fail,omitempty"`
	Terminal     bool   `json:"terminal,omitempty"`
	// ReturnPacked is returned from wre_reconcile as is.
	ReturnPacked uint64 `json:"returnPacked,omitempty"`
	// Garbage returns a malformed reconcile response.
	Garbage bool `json:"garbage,omitempty"`
	// StuckInit makes _initialize spin forever (after reading the config).
	StuckInit bool `json:"stuckInit,omitempty"`
}
