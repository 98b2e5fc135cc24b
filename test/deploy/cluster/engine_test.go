package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/deploy"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

var helpFlag = regexp.MustCompile(`(?m)^\s+--?([a-z0-9-]+)`)

// engineArgs turns the container args of the rendered Deployment into a
// local command line: same flags, with loopback ports, a temporary cache
// directory and the namespace the downward API would give. Flags that this
// wre binary does not know yet are dropped (TestDeploymentFlagsExist in
// test/deploy reports them).
func engineArgs(t *testing.T, bin string, d *appsv1.Deployment, metrics, probes string) []string {
	t.Helper()
	out, _ := exec.CommandContext(t.Context(), bin, "run", "--help").CombinedOutput()
	known := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		known[m[1]] = true
	}
	require.True(t, known["leader-elect"], "wre run --help:\n%s", out)
	args := []string{"run"}
	for _, a := range d.Spec.Template.Spec.Containers[0].Args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !known[name]:
			t.Logf("dropping %s: this wre binary does not know it", a)
			continue
		case name == "metrics-bind-address":
			a = "--metrics-bind-address=" + metrics
		case name == "health-probe-bind-address":
			a = "--health-probe-bind-address=" + probes
		case name == "cache-dir":
			a = "--cache-dir=" + t.TempDir()
		}
		args = append(args, strings.ReplaceAll(a, "$(POD_NAMESPACE)", engineNamespace))
	}
	// Outside a pod there is no service-account namespace file.
	return append(args, "--leader-election-namespace="+engineNamespace)
}

func get200(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}

// TestEngineRunsAsItsServiceAccount runs the wre binary named by WRE_BINARY
// with the Deployment's flags under the identity of the deployed
// ServiceAccount, with the RBAC of deploy/overlays/examples applied: it must
// become leader, get ready and reconcile Widgets (the built-in native
// status-sync reconciler, until module loading lands) without a single
// Forbidden. With WRE_METRICS_OUT set it also saves its /metrics there (the
// fixture of test/dashboards).
func TestEngineRunsAsItsServiceAccount(t *testing.T) {
	bin := os.Getenv("WRE_BINARY")
	if bin == "" {
		t.Fatal("WRE_BINARY is not set: run `make test`, or `make image-binary` and set WRE_BINARY=$PWD/bin/wre")
	}
	applyRBAC(t, "deploy/overlays/examples")
	installCRDs(t, "deploy/overlays/examples")
	waitAggregated(t)
	ns := controlplane.Namespace(t, cp)

	objs, err := deploy.Render("deploy/overlays/examples")
	require.NoError(t, err)
	var d appsv1.Deployment
	for _, o := range objs {
		if o.GetKind() == "Deployment" && o.GetName() == "wre" {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d))
		}
	}
	metrics, probes := freeAddr(t), freeAddr(t)
	args := append(engineArgs(t, bin, &d, metrics, probes), "--native-demo")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, cp.WriteKubeconfig(kubeconfig, cp.ServiceAccountConfig(engineNamespace, engineSA)))
	args = append(args, "--kubeconfig="+kubeconfig)

	var logs bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+engineNamespace, "POD_NAME=wre-test")
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		t.Logf("wre %s\n%s", strings.Join(args, " "), tail(logs.String(), 40))
	})
	ctx := t.Context()

	eventually(t, 60*time.Second, func() error {
		select {
		case err := <-exited:
			t.Fatalf("wre exited before it was ready: %v", err)
		default:
		}
		_, err := get200(ctx, "http://"+probes+"/readyz")
		return err
	})

	widgets := schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "widgets"}
	adminDyn, err := dynamic.NewForConfig(cp.Config())
	require.NoError(t, err)
	for i := range 5 {
		w := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
			"metadata": map[string]any{"name": fmt.Sprintf("w%d", i), "namespace": ns},
			"spec":     map[string]any{"desired": fmt.Sprintf("colour-%d", i)},
		}}
		_, err := adminDyn.Resource(widgets).Namespace(ns).Create(ctx, w, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	eventually(t, 60*time.Second, func() error {
		list, err := adminDyn.Resource(widgets).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, w := range list.Items {
			want, _, _ := unstructured.NestedString(w.Object, "spec", "desired")
			got, _, _ := unstructured.NestedString(w.Object, "status", "current")
			if got != want {
				return fmt.Errorf("widget %s: status.current %q, want %q", w.GetName(), got, want)
			}
		}
		return nil
	})

	body, err := get200(ctx, "http://"+metrics+"/metrics")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^leader_election_master_status\{name="wre-leader"\} 1$`, string(body))
	assert.Regexp(t, `(?m)^controller_runtime_reconcile_total\{controller="statussync",result="success"\} [1-9]`, string(body))
	t.Run("prometheus", func(t *testing.T) { checkDashboardsWithPrometheus(t, metrics, body) })
	if out := os.Getenv("WRE_METRICS_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, body, 0o644))
		t.Logf("wrote /metrics to %s", out)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		assert.NoError(t, err, "exit status after SIGTERM")
	case <-time.After(45 * time.Second):
		t.Fatal("wre did not exit within 45s of SIGTERM")
	}
	assert.NotRegexp(t, `(?i)forbidden`, logs.String(), "the deployed RBAC lacks a right the engine used")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
