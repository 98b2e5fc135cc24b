package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// wre runs a subcommand in process and returns its exit code and output.
func wre(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := dispatch(t.Context(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// buildStatusSync builds modules/status-sync once per test binary.
var statusSyncWasm string

func buildStatusSync(t *testing.T) string {
	t.Helper()
	if statusSyncWasm != "" {
		return statusSyncWasm
	}
	// A directory of this test binary's own: parallel runs (other checkouts)
	// must not share the file.
	dir, err := os.MkdirTemp("", "wre-cmd-test-")
	require.NoError(t, err)
	out := filepath.Join(dir, "status-sync.wasm")
	code, stdout, stderr := wre(t, "build", "../../modules/status-sync", "-o", out)
	require.Equal(t, exitOK, code, stderr)
	wasm, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, out+": "+strconv.Itoa(len(wasm))+" bytes, "+modules.Digest(wasm)+"\n", stdout)
	statusSyncWasm = out
	return out
}

func TestModuleCommandsUsage(t *testing.T) {
	broken := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(broken, "go.mod"), []byte("module broken\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(broken, "main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o600))
	greedyPolicy := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(greedyPolicy, []byte("apiVersion: wre.dev/v1alpha1\nkind: Policy\npermissions: []\nlimits: {memory: 8Gi}\n"), 0o600))
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"build"}, exitUsage, "wre build: want one directory"},
		{[]string{"build", "-h"}, exitOK, "Usage: wre build [flags] DIR"},
		{[]string{"build", "no-such-dir"}, exitUsage, "no-such-dir is not a directory"},
		{[]string{"build", "--bogus", "x"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"package", "a.wasm", "b.wasm"}, exitUsage, `wre package: want one .wasm file, got ["a.wasm" "b.wasm"]`},
		{[]string{"package", "--apply", "a.wasm"}, exitUsage, "--apply needs --namespace"},
		{[]string{"package", "--manifest", "missing.yaml", "a.wasm"}, exitError, "missing.yaml: no such file"},
		{[]string{"package", "--manifest", "../../modules/status-sync/module.yaml", "main.go"}, exitError, "main.go: not a wasm module"},
		{[]string{"inspect"}, exitUsage, "wre inspect: want one file"},
		{[]string{"inspect", "--policy", "missing.yaml", "x"}, exitError, "no such file"},
		{[]string{"status", "extra"}, exitUsage, `want no arguments, got ["extra"]`},
		{[]string{"status", "--url", "http://127.0.0.1:1"}, exitError, "connection refused"},
		{[]string{"run", "--kubeconfig", cp.KubeconfigPath(), "--module-namespace", "x", "--policy", "missing.yaml",
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, exitError, "load policy: open missing.yaml"},
		{[]string{"run", "--kubeconfig", cp.KubeconfigPath(), "--module-namespace", "x", "--policy", greedyPolicy,
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, exitError, "load policy " + greedyPolicy + ": limits.memory 8Gi: must be positive and at most 4Gi"},
		{[]string{"build", broken}, exitError, "build module " + broken},
	} {
		code, _, stderr := wre(t, c.args...)
		assert.Equal(t, c.code, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.stderr, c.args)
	}
}

func TestPackageAndInspect(t *testing.T) {
	wasm := buildStatusSync(t)
	dir := t.TempDir()
	// A small part size splits the module over several ConfigMaps.
	code, yamlOut, stderr := wre(t, "package", "--namespace", "wre-system", "--part-size", "300000", "--manifest", "../../modules/status-sync/module.yaml", wasm)
	require.Equal(t, exitOK, code, stderr)
	cms, err := decodeConfigMaps([]byte(yamlOut))
	require.NoError(t, err)
	require.Greater(t, len(cms), 1, "a module larger than the part size needs several ConfigMaps")
	m, got, err := modules.Assemble(cms, modules.AssembleOptions{})
	require.NoError(t, err)
	raw, _ := os.ReadFile(wasm)
	assert.Equal(t, raw, got)
	assert.Equal(t, "status-sync", m.Name)
	packaged := filepath.Join(dir, "status-sync.yaml")
	require.NoError(t, os.WriteFile(packaged, []byte(yamlOut), 0o600))

	code, out, stderr := wre(t, "inspect", packaged)
	require.Equal(t, exitOK, code, stderr+out)
	for _, want := range []string{"packaged:  " + strconv.Itoa(len(cms)) + " ConfigMaps", "digest:    " + modules.Digest(raw), "abi:       wre_abi_v2",
		"wre_reconcile (i32,i32)->(i64)", "wre_buffer (i32)->(i32)", "wre.call (i32,i32,i32)->(i64)", "name: status-sync", "problems:  none"} {
		assert.Contains(t, out, want)
	}

	// The engine would refuse these.
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte("apiVersion: wre.dev/v1alpha1\nkind: Policy\npermissions: []\n"), 0o600))
	code, out, _ = wre(t, "inspect", "--policy", policy, packaged)
	assert.Equal(t, exitError, code)
	assert.Contains(t, out, `- module "status-sync" exceeds the engine policy`)
	// The policy file's ceilings, as `wre run --policy` would apply them.
	require.NoError(t, os.WriteFile(policy, []byte("apiVersion: wre.dev/v1alpha1\nkind: Policy\npermissions: [{apiGroups: ['*', ''], resources: ['*'], verbs: ['*']}]\n"+
		"limits: {memory: 32Mi, concurrency: 2}\n"), 0o600))
	code, out, _ = wre(t, "inspect", "--policy", policy, packaged)
	assert.Equal(t, exitError, code)
	assert.Contains(t, out, "memoryLimit 64Mi is above the engine's ceiling of 32Mi (wre run --max-module-memory or policy limits.memory)")
	assert.NotContains(t, out, "concurrency 2 is above")

	bad := filepath.Join(dir, "bad.wasm")
	require.NoError(t, os.WriteFile(bad, []byte("\x00asm\x01\x00\x00\x00\x00\x03\x01x"), 0o600))
	code, out, _ = wre(t, "inspect", "--manifest", "../../modules/status-sync/module.yaml", bad)
	assert.Equal(t, exitError, code)
	assert.Contains(t, out, "problems:\n  - decode wasm")

	notYAML := filepath.Join(dir, "x.yaml")
	require.NoError(t, os.WriteFile(notYAML, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"), 0o600))
	code, out, _ = wre(t, "inspect", notYAML)
	assert.Equal(t, exitError, code)
	assert.Contains(t, out, `x.yaml is not a wre package: expected a wasm module`)
	assert.Contains(t, out, `Secret "s" is not a ConfigMap`)

	random := filepath.Join(dir, "random.bin")
	noise := make([]byte, 4096)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(noise)
	require.NoError(t, os.WriteFile(random, noise, 0o600))
	code, out, _ = wre(t, "inspect", random)
	assert.Equal(t, exitError, code)
	assert.Contains(t, out, "problems:\n  - "+random+" is not a wre package: expected a wasm module (starting with \\0asm) or the ConfigMap YAML that `wre package` writes")
}

func TestStatusTable(t *testing.T) {
	loaded := time.Now().Add(-90 * time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/modules" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode([]registry.Status{
			{Name: "a", Digest: "sha256:0123456789abcdef0123", ABI: "v1", State: registry.StateLoaded, LoadedAt: &loaded, Instances: 2, IdleClosed: 5, Reconciles: 7, ReconcileErrors: 1},
			{Name: "b", State: registry.StateLoadFailed, LastError: "CompileFailed: boom"},
			{Name: "c", Digest: "sha256:0123456789abcdef0123", ABI: "v2", State: registry.StateLoadFailed, LoadedAt: &loaded, LastError: "InvalidPackage: digest"},
		})
	}))
	defer srv.Close()
	code, out, stderr := wre(t, "status", "--url", srv.URL+"/")
	require.Equal(t, exitOK, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4)
	assert.Regexp(t, `^NAME\s+PHASE\s+DIGEST\s+ABI\s+INSTANCES\s+IDLE-CLOSED\s+RECONCILES\s+ERRORS\s+AGE\s+LAST ERROR$`, lines[0])
	assert.Regexp(t, `^a\s+Ready\s+sha256:0123456789ab\s+v1\s+2\s+5\s+7\s+1\s+1m3\ds\s+-$`, lines[1])
	assert.Regexp(t, `^b\s+Failed\s+-\s+-\s+0\s+0\s+0\s+0\s+-\s+CompileFailed: boom$`, lines[2])
	assert.Regexp(t, `^c\s+Degraded\s+sha256:0123456789ab\s+v2\s+.*InvalidPackage: digest$`, lines[3], "an older version still serves")

	code, _, stderr = wre(t, "status", "--url", srv.URL+"/nothing")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "404 Not Found")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// TestModulesEndToEnd runs `wre run` with a module namespace against the
// local control plane: `wre build` → `wre package --apply` → the module
// reconciles Widgets; a new version swaps in; a bad version is refused while
// the old one keeps serving; deleting the ConfigMaps unloads the module.
func TestModulesEndToEnd(t *testing.T) {
	wasm := buildStatusSync(t)
	ctx := t.Context()
	require.NoError(t, enginetest.InstallWidgetCRD(ctx, cp.Config()))
	ns := controlplane.Namespace(t, cp)
	kube := kubernetes.NewForConfigOrDie(cp.Config())
	dyn := dynamic.NewForConfigOrDie(cp.Config())
	metricsAddr := freeAddr(t)

	runCtx, cancel := context.WithCancel(ctx)
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(runCtx, []string{"run", "--kubeconfig", cp.KubeconfigPath(), "--log-format", "json",
			"--module-namespace", ns, "--cache-dir", t.TempDir(),
			"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "127.0.0.1:0"}, &bytes.Buffer{}, &stderr)
	}()
	defer func() {
		cancel()
		assert.Equal(t, exitOK, <-done)
	}()
	logs := newLogWatcher(&stderr)
	logs.waitFor(t, "Watching module ConfigMaps")

	apply := func(wasmPath string) time.Time {
		t.Helper()
		start := time.Now()
		code, out, errOut := wre(t, "package", "--apply", "--kubeconfig", cp.KubeconfigPath(), "--namespace", ns,
			"--manifest", "../../modules/status-sync/module.yaml", wasmPath)
		require.Equal(t, exitOK, code, errOut)
		assert.Contains(t, out, "configmap/wre-module-status-sync serverside-applied")
		return start
	}
	events := func(reason string) []string {
		list, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("reason", reason).String()})
		require.NoError(t, err)
		var out []string
		for _, e := range list.Items {
			out = append(out, e.Message)
		}
		return out
	}
	waitEvent := func(reason, contains string) {
		t.Helper()
		require.Eventually(t, func() bool {
			for _, m := range events(reason) {
				if strings.Contains(m, contains) {
					return true
				}
			}
			return false
		}, 8*time.Minute, 100*time.Millisecond, "no %s event with %q; logs:\n%s", reason, contains, stderr.String())
	}
	create := func(name, desired string) error {
		w := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
			"metadata": map[string]any{"name": name}, "spec": map[string]any{"desired": desired}}}
		_, err := dyn.Resource(statussync.GVR).Namespace(ns).Create(ctx, w, metav1.CreateOptions{})
		return err
	}
	converged := func(name, desired string) {
		t.Helper()
		require.Eventually(t, func() bool {
			got, err := dyn.Resource(statussync.GVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
			current, _, _ := unstructured.NestedString(got.Object, "status", "current")
			return err == nil && current == desired
		}, 2*time.Minute, 50*time.Millisecond, "widget %s not reconciled; logs:\n%s", name, stderr.String())
	}
	widget := func(name, desired string) {
		t.Helper()
		require.NoError(t, create(name, desired))
		converged(name, desired)
	}

	raw, err := os.ReadFile(wasm)
	require.NoError(t, err)
	start := apply(wasm)
	waitEvent("Loaded", "module status-sync "+modules.Digest(raw))
	t.Logf("first load (cold compilation cache): %s", time.Since(start).Round(time.Millisecond))
	widget("w1", "blue")

	// A new digest (same code plus a custom section) swaps in.
	v2 := filepath.Join(t.TempDir(), "v2.wasm")
	v2raw := append(append([]byte{}, raw...), 0, 3, 1, 'v', '2')
	require.NoError(t, os.WriteFile(v2, v2raw, 0o600))
	// Widgets stream in while the new version loads and swaps in: none is
	// lost in the swap.
	stop, streamed := make(chan struct{}), make(chan int, 1)
	var stopOnce sync.Once
	stopStream := func() { stopOnce.Do(func() { close(stop) }) }
	defer stopStream()
	go func() {
		n := 0
		defer func() { streamed <- n }()
		for ; n < 200; n++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if create("load-"+strconv.Itoa(n), "v"+strconv.Itoa(n)) != nil {
				return // the test is ending
			}
		}
	}()
	start = apply(v2)
	waitEvent("Loaded", modules.Digest(v2raw)+" ")
	t.Logf("hot swap to a new digest (cold compilation cache): %s", time.Since(start).Round(time.Millisecond))
	waitEvent("Loaded", "replacing "+modules.Digest(raw))
	time.Sleep(time.Second) // some widgets after the swap too
	stopStream()
	n := <-streamed
	t.Logf("%d widgets created during the swap", n)
	for i := range n {
		converged("load-"+strconv.Itoa(i), "v"+strconv.Itoa(i))
	}
	widget("w2", "green")

	// A version the engine cannot run is refused; v2 keeps serving.
	bad := filepath.Join(t.TempDir(), "bad.wasm")
	require.NoError(t, os.WriteFile(bad, []byte("\x00asm\x01\x00\x00\x00\x01"), 0o600))
	apply(bad)
	waitEvent("LoadFailed", "still running "+modules.Digest(v2raw))
	widget("w3", "red")

	code, out, errOut := wre(t, "status", "--url", "http://"+metricsAddr)
	require.Equal(t, exitOK, code, errOut)
	assert.Regexp(t, `status-sync\s+Degraded\s+`+modules.Digest(v2raw)[:19]+`\s+v2\s+\d+\s+\d+`, out)
	assert.Contains(t, out, "CompileFailed")

	// Back to v1: the compilation cache has it.
	start = apply(wasm)
	waitEvent("Loaded", "replacing "+modules.Digest(v2raw))
	t.Logf("hot swap back (warm compilation cache): %s", time.Since(start).Round(time.Millisecond))

	require.NoError(t, kube.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: modules.LabelModule}))
	logs.waitFor(t, "Unloaded module")
	resp, err := http.Get("http://" + metricsAddr + "/modules")
	require.NoError(t, err)
	defer resp.Body.Close()
	var statuses []registry.Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&statuses))
	assert.Empty(t, statuses)
}

// TestEnginePolicyPrecedence checks the ceilings of `wre run`: a flag set
// explicitly over the policy file, the file over the defaults, and a module
// asking for more than the file's ceiling refused.
func TestEnginePolicyPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("apiVersion: wre.dev/v1alpha1\nkind: Policy\npermissions: [{apiGroups: ['*', ''], resources: ['*'], verbs: ['*']}]\n"+
		"limits:\n  memory: 256Mi\n  concurrency: 8\n  logLines: 100\n"), 0o600))
	var flags modules.Limits
	fs := flag.NewFlagSet("wre run", flag.ContinueOnError)
	flags.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--max-module-concurrency", "16", "--max-init-timeout", "5s"}))

	p, err := enginePolicy(path, flags)
	require.NoError(t, err)
	d := modules.DefaultLimits
	assert.Equal(t, modules.Limits{MemoryBytes: 256 << 20, Concurrency: 16, ReconcileTimeout: d.ReconcileTimeout, InitTimeout: 5 * time.Second, LogLines: 100, LogBytes: d.LogBytes},
		p.Limits.Over(d))
	greedy := &modules.Manifest{Name: "greedy", Concurrency: 16, MemoryLimit: ptr.To(resource.MustParse("512Mi"))}
	assert.EqualError(t, p.Check(greedy), `module "greedy" exceeds the engine policy: memoryLimit 512Mi is above the engine's ceiling of 256Mi (wre run --max-module-memory or policy limits.memory)`)

	p, err = enginePolicy("", modules.Limits{})
	require.NoError(t, err)
	assert.Equal(t, modules.Limits{}, p.Limits, "no file, no flag: the defaults")
	assert.True(t, p.AllowServiceAccounts, "no file: modules.AllowAll")
	_, err = enginePolicy(path, modules.Limits{LogLines: -1})
	assert.EqualError(t, err, "--max-log-lines -1: must be positive and at most 1048576")
}
