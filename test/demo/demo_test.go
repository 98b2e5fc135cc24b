package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/modulestatus"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// TestDemo runs `make demo` end to end (the wre binary, `wre build`, `wre
// package --apply`, `wre run` with the three example modules on the local
// control plane) and then checks each module's behaviour beyond the first
// reconcile: changes propagate, finalizers clean up, owned objects drive their
// owner's status, and garbage collection removes children. It ends the demo
// as Ctrl-C does (its context ends) and checks what a user is left with: no
// error, the engine and the control plane stopped, the engine log kept, and a
// first status without errors.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	var out enginetest.SyncBuffer
	var got *results
	err := run(ctx, options{reconcileTimeout: 8 * time.Minute, out: io.MultiWriter(&out, testWriter{t}), then: func(ctx context.Context, r *results) error {
		got = r
		if path := os.Getenv("WRE_METRICS_OUT"); path != "" {
			// test/dashboards/testdata/metrics-default.txt: a default single replica.
			require.NoError(t, scrapeTo(ctx, "http://"+r.metricsAddr+"/metrics", path))
		}
		t.Run("status-sync follows spec changes", func(t *testing.T) { statusSyncFollows(ctx, t, r.dyn) })
		t.Run("configmap-replicator syncs and cleans up", func(t *testing.T) { replicatorSyncsAndCleansUp(ctx, t, r.kube) })
		t.Run("app-operator status and garbage collection", func(t *testing.T) { appOperatorStatusAndGC(ctx, t, r.kube, r.dyn) })
		t.Run("kubectl get wremodules", func(t *testing.T) { wreModulesReady(ctx, t, r.dyn) })
		cancel() // what Ctrl-C does
		return nil
	}})
	require.NoError(t, err, "an interrupted demo ends without error")
	require.NotNil(t, got, "the demo came up")

	text := out.String()
	// The first wre status: read PHASE and ERRORS by the header's column
	// names, so that a new column does not shift them.
	header := regexp.MustCompile(`(?m)^NAME\s+PHASE\s.*$`).FindString(text)
	require.NotEmpty(t, header, "the demo prints a wre status table:\n%s", text)
	columns := strings.Fields(header)
	errorsCol := slices.Index(columns, "ERRORS")
	require.Positive(t, errorsCol, header)
	rows := regexp.MustCompile(`(?m)^(status-sync|configmap-replicator|app-operator)\s.*$`).FindAllString(text, -1)
	require.Len(t, rows, 3, "the first wre status shows the three modules:\n%s", text)
	for _, row := range rows {
		f := strings.Fields(row)
		require.Greater(t, len(f), errorsCol, row)
		assert.Equal(t, "Ready", f[1], "%s: loaded and serving", f[0])
		assert.Equal(t, "0", f[errorsCol], "%s: the first status shows no errors", f[0])
	}
	assert.Contains(t, text, "What to try next")
	assert.Contains(t, text, "wre status --url http://"+got.metricsAddr)
	assert.Contains(t, text, "engine log kept at "+got.engineLog)

	assert.NotNil(t, got.engine.ProcessState, "the engine was stopped")
	assert.Contains(t, controlplane.Tail(got.engineLog, 200), "Manager stopped", "the engine log is kept, to the end")
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(got.cp.Server(), "https://"), time.Second)
	assert.Error(t, err, "the API server was stopped")
}

// wreModulesReady: the engine publishes a Ready WreModule per module, with
// the digest and ABI it runs.
func wreModulesReady(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	res := dyn.Resource(modulestatus.GVR).Namespace(moduleNamespace)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, m := range []string{"status-sync", "configmap-replicator", "app-operator"} {
			obj, err := res.Get(ctx, m, metav1.GetOptions{})
			if !assert.NoError(c, err, m) {
				continue
			}
			st, _, _ := unstructured.NestedMap(obj.Object, "status")
			assert.Equal(c, "Ready", st["phase"], m)
			assert.Equal(c, "v2", st["abi"], m)
			assert.Regexp(c, `^sha256:[0-9a-f]{12}$`, st["version"], m)
		}
	}, time.Minute, 200*time.Millisecond)
}

// scrapeTo writes the exposition at url to path.
func scrapeTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// testWriter shows the demo's output in the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestEngineAddrs: the README's ports when free, others when not.
func TestEngineAddrs(t *testing.T) {
	m, p, err := engineAddrs("", "")
	require.NoError(t, err)
	assert.NotEqual(t, defaultMetricsAddr, m)
	assert.NotEqual(t, m, p)

	// Preferred addresses of the test's own (the README's may be taken on a
	// shared machine): used while free, left alone once taken.
	ports, err := controlplane.FreePorts(2)
	require.NoError(t, err)
	wantMetrics, wantProbe := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	m, p, err = engineAddrs(wantMetrics, wantProbe)
	require.NoError(t, err)
	assert.Equal(t, wantMetrics, m, "a free preferred port is used")
	assert.Equal(t, wantProbe, p)

	l, err := net.Listen("tcp", wantMetrics)
	require.NoError(t, err)
	defer l.Close()
	m, p, err = engineAddrs(wantMetrics, wantProbe)
	require.NoError(t, err)
	assert.NotEqual(t, wantMetrics, m, "a taken port is not used")
	assert.NotEqual(t, wantProbe, p)
}

// eventually polls cond every 250ms for up to two minutes.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, 2*time.Minute, 250*time.Millisecond, fmt.Sprintf(format, args...))
}

func statusSyncFollows(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	patch := []byte(`{"spec":{"desired":"purple"}}`)
	_, err := dyn.Resource(widgets).Namespace("demo").Patch(ctx, "widget-1", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, func() bool {
		w, err := dyn.Resource(widgets).Namespace("demo").Get(ctx, "widget-1", metav1.GetOptions{})
		current, _, _ := unstructured.NestedString(w.Object, "status", "current")
		return err == nil && current == "purple"
	}, "widget-1 status.current follows spec.desired to purple")
}

func replicatorSyncsAndCleansUp(ctx context.Context, t *testing.T, kube kubernetes.Interface) {
	cms := kube.CoreV1().ConfigMaps
	src, err := cms("demo").Get(ctx, "shared-settings", metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, src.Finalizers, "wre.dev/replicator", "the source carries the replicator's finalizer")

	src.Data["log-level"] = "debug"
	_, err = cms("demo").Update(ctx, src, metav1.UpdateOptions{})
	require.NoError(t, err)
	for _, ns := range []string{"team-a", "team-b"} {
		eventually(t, func() bool {
			c, err := cms(ns).Get(ctx, "shared-settings", metav1.GetOptions{})
			return err == nil && c.Data["log-level"] == "debug"
		}, "the change reaches %s", ns)
	}

	require.NoError(t, cms("demo").Delete(ctx, "shared-settings", metav1.DeleteOptions{}))
	for _, ns := range []string{"team-a", "team-b"} {
		eventually(t, func() bool {
			_, err := cms(ns).Get(ctx, "shared-settings", metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, "the copy in %s is removed", ns)
	}
	eventually(t, func() bool {
		_, err := cms("demo").Get(ctx, "shared-settings", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, "the source is released by its finalizer and deleted")
}

func appReady(ctx context.Context, dyn dynamic.Interface) (*metav1.Condition, error) {
	app, err := dyn.Resource(apps).Namespace("demo").Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	raw, _, _ := unstructured.NestedSlice(app.Object, "status", "conditions")
	var conds []metav1.Condition
	for _, c := range raw {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		reason, _ := m["reason"].(string)
		conds = append(conds, metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason})
	}
	return meta.FindStatusCondition(conds, "Ready"), nil
}

func appOperatorStatusAndGC(ctx context.Context, t *testing.T, kube kubernetes.Interface, dyn dynamic.Interface) {
	eventually(t, func() bool {
		c, err := appReady(ctx, dyn)
		return err == nil && c != nil && c.Status == metav1.ConditionFalse
	}, "the App reports Ready=False while its Deployment has no available replicas")

	// No kubelet runs here: play the deployment controller and report the
	// replicas available. The module watches the Deployment it owns.
	dep, err := kube.AppsV1().Deployments("demo").Get(ctx, "hello", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, dep.OwnerReferences, "the Deployment is owned by the App")
	dep.Status.ObservedGeneration = dep.Generation
	dep.Status.Replicas, dep.Status.UpdatedReplicas, dep.Status.ReadyReplicas, dep.Status.AvailableReplicas = 2, 2, 2, 2
	_, err = kube.AppsV1().Deployments("demo").UpdateStatus(ctx, dep, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, func() bool {
		c, err := appReady(ctx, dyn)
		return err == nil && c != nil && c.Status == metav1.ConditionTrue
	}, "the App turns Ready=True once its Deployment is available")

	require.NoError(t, dyn.Resource(apps).Namespace("demo").Delete(ctx, "hello", metav1.DeleteOptions{}))
	eventually(t, func() bool {
		_, errD := kube.AppsV1().Deployments("demo").Get(ctx, "hello", metav1.GetOptions{})
		_, errS := kube.CoreV1().Services("demo").Get(ctx, "hello", metav1.GetOptions{})
		return apierrors.IsNotFound(errD) && apierrors.IsNotFound(errS)
	}, "garbage collection removes the App's Deployment and Service")
}

// TestHeartbeat: a long build step is reported again and again until it ends.
func TestHeartbeat(t *testing.T) {
	var out enginetest.SyncBuffer
	stop := heartbeat(&out, time.Millisecond, func() string { return "wre build modules/status-sync (step 2/4)" })
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") >= 2 }, 10*time.Second, time.Millisecond)
	stop()
	n := out.String()
	assert.Contains(t, n, "still at wre build modules/status-sync (step 2/4)")
	assert.Equal(t, n, out.String(), "nothing after stop")
}
