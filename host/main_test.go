package host_test

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"

	"github.com/wre-dev/wre/host/internal/guestscript"
	"github.com/wre-dev/wre/host/wasmtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// klog's flush daemon is started by client-go packages at init.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	)
}

// step and script are the config of testdata/guests/script.
type (
	step    = guestscript.Step
	script  = guestscript.Script
	rawCall = guestscript.RawCall
)

func ptr[T any](v T) *T { return &v }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

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
