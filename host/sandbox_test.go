package host_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/internal/guestscript"
	"github.com/wre-dev/wre/host/wasmtest"
)

// TestSandboxHidesTheHost has a guest look for the host's files, environment,
// command line and sockets, and report what it saw in a ConfigMap.
func TestSandboxHidesTheHost(t *testing.T) {
	t.Setenv("WRE_SANDBOX_PROBE", "visible to the host process only")
	self, err := filepath.Abs("sandbox_test.go")
	require.NoError(t, err)
	files := []string{self, "sandbox_test.go", "/etc/hostname", "/etc/passwd", "/proc/self/environ", "/"}
	_, err = os.ReadFile(self)
	require.NoError(t, err, "the host process can read the file the guest tries")

	h := run(t, script{Steps: []step{
		{Probe: &guestscript.Probe{Name: "sandbox", Files: files}},
		{Op: abi.OpCreate, Req: &abi.Request{Version: "v1", Resource: "configmaps", Kind: "ConfigMap", Namespace: "ns", ContentType: abi.ContentTypeJSON},
			UseBodyOf: ptr(0), Want: 201},
	}}, wasmtest.Options{Module: host.ModuleOptions{Name: "sandboxed"}})
	_, err = h.Reconcile(t.Context(), "ns", "obj")
	require.NoError(t, err)

	cm, err := h.Get(t.Context(), configMaps, "ns", "sandbox")
	require.NoError(t, err)
	var seen guestscript.ProbeReport
	require.NoError(t, json.Unmarshal([]byte(cm.Object["data"].(map[string]any)["report"].(string)), &seen))
	t.Logf("the guest saw: %+v", seen)
	assert.Equal(t, []string{"sandboxed"}, seen.Args, "argv is the module name only")
	assert.Empty(t, seen.Env, "no environment variables")
	assert.Empty(t, seen.Descriptors, "nothing preopened: no directory, no socket")
	for _, f := range files {
		if assert.Contains(t, seen.Files, f) {
			assert.False(t, strings.HasPrefix(seen.Files[f], "read "), "%s is readable in the guest: %s", f, seen.Files[f])
		}
	}
}
