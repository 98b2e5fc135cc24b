package host_test

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host/wasmtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// klog's flush daemon is started by client-go packages at init.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	)
}

// step and script mirror the config of testdata/guests/script.
type step struct {
	Op           abi.Op       `json:"op,omitempty"`
	Req          *abi.Request `json:"req,omitempty"`
	UseBodyOf    *int         `json:"useBodyOf,omitempty"`
	Want         int32        `json:"want,omitempty"`
	WantReason   string       `json:"wantReason,omitempty"`
	BodyContains string       `json:"bodyContains,omitempty"`
	WantItems    *int         `json:"wantItems,omitempty"`
	Raw          *rawCall     `json:"raw,omitempty"`
	LogRaw       *rawCall     `json:"logRaw,omitempty"`
	Log          string       `json:"log,omitempty"`
	Print        string       `json:"print,omitempty"`
	Panic        string       `json:"panic,omitempty"`
	Loop         bool         `json:"loop,omitempty"`
	Spin         int          `json:"spin,omitempty"`
	Grow         bool         `json:"grow,omitempty"`
	Exit         int          `json:"exit,omitempty"`
}

type rawCall struct{ Op, Ptr, Len uint32 }

type script struct {
	Steps        []step `json:"steps"`
	RequeueCount bool   `json:"requeueCount,omitempty"`
	Fail         string `json:"fail,omitempty"`
	Terminal     bool   `json:"terminal,omitempty"`
	ReturnPacked uint64 `json:"returnPacked,omitempty"`
	Garbage      bool   `json:"garbage,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// scriptGuest returns the built script guest.
func scriptGuest(t testing.TB) []byte { return wasmtest.Build(t, "testdata/guests/script") }

// run starts the script guest with s as its config.
func run(t testing.TB, s script, opts wasmtest.Options) *wasmtest.Harness {
	t.Helper()
	cfg, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	opts.Module.Config = cfg
	return wasmtest.New(t, scriptGuest(t), opts)
}
