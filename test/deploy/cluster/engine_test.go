package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wre-dev/wre/engine/modulestatus"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/deploy"
	"github.com/wre-dev/wre/test/enginetest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

var helpFlag = regexp.MustCompile(`(?m)^\s+--?([a-z0-9-]+)`)

// engineArgs turns the container args of the rendered Deployment (after
// "run") into the flags of a local `wre run`: same flags, with loopback ports, a temporary cache
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
	var args []string
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

// engine is a `wre run` process started by startEngine.
type engine struct {
	*enginetest.Engine
	metrics string // loopback address of /metrics and /modules
	started time.Time
	// scheme is https when the Deployment runs --metrics-secure; reader then
	// sends a token allowed to read /metrics and /modules.
	scheme string
	reader *http.Client
}

// secureMetrics reports whether the Deployment d serves /metrics over HTTPS.
func secureMetrics(d *appsv1.Deployment) bool {
	return slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--metrics-secure")
}

// tokenClient returns a client that sends token (none if empty) and accepts
// the engine's self-signed certificate, as the ServiceMonitor's
// insecureSkipVerify does.
func tokenClient(t *testing.T, token string) *http.Client {
	t.Helper()
	c, err := rest.HTTPClientFor(&rest.Config{BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	require.NoError(t, err)
	return c
}

// get returns the status and body of GET path on the engine with c.
func (e *engine) get(t *testing.T, c *http.Client, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.scheme+"://"+e.metrics+path, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// startEngine runs bin with the flags of the Deployment d under the identity
// of the deployed ServiceAccount (impersonated) and waits until it is ready.
func startEngine(t *testing.T, bin string, d *appsv1.Deployment) *engine {
	t.Helper()
	e := &engine{metrics: freeAddr(t), scheme: "http", reader: http.DefaultClient}
	if secureMetrics(d) {
		e.scheme, e.reader = "https", tokenClient(t, prometheusToken(t))
	}
	args := engineArgs(t, bin, d, e.metrics, freeAddr(t))
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, cp.WriteKubeconfig(kubeconfig, cp.ServiceAccountConfig(engineNamespace, engineSA)))
	args = append(args, "--kubeconfig="+kubeconfig)
	e.started = time.Now()
	var err error
	e.Engine, err = enginetest.StartEngine(bin, "wre", args...)
	require.NoError(t, err)
	t.Cleanup(func() {
		e.Kill()
		if t.Failed() {
			t.Logf("wre run %s\n%s", strings.Join(args, " "), e.LogTail(60))
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	require.NoError(t, e.Ready(ctx))
	return e
}

// modules returns GET /modules by module name.
func (e *engine) modules(ctx context.Context) (map[string]registry.Status, error) {
	list, err := registry.FetchStatuses(ctx, e.reader, e.scheme+"://"+e.metrics+"/modules")
	if err != nil {
		return nil, err
	}
	out := map[string]registry.Status{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out, nil
}

// scrape returns the engine's /metrics, raw and parsed.
func (e *engine) scrape(t *testing.T) ([]byte, samples) {
	t.Helper()
	code, text := e.get(t, e.reader, "/metrics")
	require.Equal(t, http.StatusOK, code, text)
	body := []byte(text)
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	return body, families
}

// samples are the metric families of a scrape.
type samples map[string]*dto.MetricFamily

// sum adds the values of the series of family name whose labels include
// match (histograms count observations), and returns how many series matched.
func (s samples) sum(name string, match map[string]string) (float64, int) {
	var total float64
	n := 0
	f, ok := s[name]
	if !ok {
		return 0, 0
	}
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			ok = ok && have[k] == v
		}
		if !ok {
			continue
		}
		n++
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total, n
}

func wreBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("WRE_BINARY")
	if bin == "" {
		t.Fatal("WRE_BINARY is not set: run `make test`, or `make image-binary` and set WRE_BINARY=$PWD/bin/wre")
	}
	return bin
}

var (
	widgets = schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "widgets"}
	apps    = schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "apps"}
)

// TestEngineRunsAsItsServiceAccount is the examples overlay at work: the
// example modules are built and packaged by the wre binary named by
// WRE_BINARY (as package-modules.sh does), the overlay's RBAC, CRDs and
// module ConfigMaps are applied, and the binary runs with the Deployment's
// flags under the identity of the deployed ServiceAccount (impersonated).
// Every module must load and reconcile a sample object without a single
// Forbidden, which proves the RBAC is sufficient; actions outside it stay
// denied. Then a real Prometheus scrapes the engine: every dashboard query
// must return data and every series an alert reads must exist; a broken
// module version must fire WreModuleLoadFailed (and nothing else fires)
// while the running version keeps reconciling. With
// WRE_METRICS_OUT set the final /metrics is saved there (the fixture of
// test/dashboards).
func TestEngineRunsAsItsServiceAccount(t *testing.T) {
	bin := wreBinary(t)
	ctx := t.Context()
	began := time.Now()
	modulesDir := t.TempDir()
	require.NoError(t, deploy.PackageExampleModules(ctx, bin, modulesDir))
	t.Logf("wre build + wre package of %d example modules: %s", len(deploy.ExampleModules), time.Since(began).Round(time.Millisecond))

	applyRBAC(t, "deploy/overlays/examples")
	installCRDs(t, "deploy/overlays/examples")
	waitAggregated(t)
	objs, err := deploy.RenderPackaged("deploy/overlays/examples", modulesDir)
	require.NoError(t, err)
	d := applyModules(t, objs)

	e := startEngine(t, bin, d)
	loaded := waitLoaded(t, e, deploy.ExampleModules)
	for _, m := range deploy.ExampleModules {
		t.Logf("time to Loaded: %-21s %s after the engine started", m, loaded[m].Round(time.Millisecond))
	}
	// kubectl get wremodules: the engine, with the deployed RBAC, publishes
	// what /modules reports.
	for _, m := range deploy.ExampleModules {
		waitWreModule(t, m, modulestatus.PhaseReady, e.moduleDigest(t, m))
	}

	reconciled := reconcileSamples(t)
	for _, m := range deploy.ExampleModules {
		t.Logf("time to reconcile: %-21s %s after its sample was created", m, reconciled[m].Round(time.Millisecond))
	}

	// A copy into a namespace that does not exist fails until it exists:
	// reconcile errors and retries with backoff.
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	ns := controlplane.Namespace(t, cp)
	_, err = admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "nowhere", Annotations: map[string]string{"wre.dev/replicate-to": "wre-test-no-such-namespace"}},
		Data:       map[string]string{"k": "v"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, 60*time.Second, func() error {
		_, m := e.scrape(t)
		for _, c := range []struct {
			name  string
			match map[string]string
		}{
			{"controller_runtime_reconcile_errors_total", map[string]string{"controller": "configmap-replicator"}},
			{"workqueue_retries_total", map[string]string{"name": "configmap-replicator"}},
		} {
			if v, _ := m.sum(c.name, c.match); v < 1 {
				return fmt.Errorf("%s%v is %v, want at least 1", c.name, c.match, v)
			}
		}
		return nil
	})

	t.Run("denied", func(t *testing.T) { checkEngineDenied(t) })
	t.Run("metrics access", func(t *testing.T) { checkMetricsAccess(t, e) })

	body, m := e.scrape(t)
	t.Run("collectors", func(t *testing.T) { checkCollectors(t, m) })

	prom := startPrometheus(t, e)
	t.Run("dashboards", func(t *testing.T) { checkDashboardsWithPrometheus(t, prom, body) })
	t.Run("alerts", func(t *testing.T) { checkAlertRules(t, prom, nil) })
	t.Run("load failure", func(t *testing.T) { checkLoadFailure(t, e, prom) })

	body, _ = e.scrape(t)
	if out := os.Getenv("WRE_METRICS_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, body, 0o644))
		t.Logf("wrote /metrics to %s", out)
	}

	assert.NoError(t, e.Stop(45*time.Second), "exit after SIGTERM")
	assert.NotRegexp(t, `(?i)forbidden`, e.Log(), "the deployed RBAC lacks a right the engine used")
}

// applyModules applies the module ConfigMaps of the rendered overlay in the
// engine's namespace, as `kubectl apply -k` would, after deleting module
// ConfigMaps left there by other tests; they are deleted when the test ends.
// It returns the overlay's Deployment.
func applyModules(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	cms := admin.CoreV1().ConfigMaps(engineNamespace)
	deleteModules := func() {
		err := cms.DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "wre.dev/module"})
		if err != nil {
			t.Errorf("delete module ConfigMaps: %v", err)
		}
	}
	deleteModules()
	t.Cleanup(deleteModules)
	a := newApplier(t, cp.Config())
	var d appsv1.Deployment
	n := 0
	for _, o := range objs {
		switch {
		case o.GetKind() == "Deployment" && o.GetName() == "wre":
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d))
		case o.GetKind() == "ConfigMap" && o.GetLabels()["wre.dev/module"] != "":
			require.NotContains(t, o.GetAnnotations(), deploy.PlaceholderAnnotation)
			require.Equal(t, engineNamespace, o.GetNamespace())
			require.NoError(t, a.apply(ctx, o, false))
			n++
		}
	}
	require.NotEmpty(t, d.Name, "the overlay has no Deployment wre")
	require.GreaterOrEqual(t, n, len(deploy.ExampleModules), "module ConfigMaps in the overlay")
	t.Logf("applied %d module ConfigMaps of deploy/overlays/examples", n)
	return &d
}

// waitLoaded waits until GET /modules reports every module Loaded and
// returns how long each took from the engine's start.
func waitLoaded(t *testing.T, e *engine, names []string) map[string]time.Duration {
	t.Helper()
	took := map[string]time.Duration{}
	eventually(t, 5*time.Minute, func() error {
		st, err := e.modules(t.Context())
		if err != nil {
			return err
		}
		var waiting []string
		for _, n := range names {
			s, ok := st[n]
			switch {
			case ok && s.State == "LoadFailed":
				t.Fatalf("module %s failed to load: %s", n, s.LastError)
			case ok && s.State == "Loaded":
				if _, seen := took[n]; !seen {
					took[n] = time.Since(e.started)
				}
				assert.NotEmpty(t, s.Digest, n)
				assert.Positive(t, s.Instances, n)
			default:
				waiting = append(waiting, fmt.Sprintf("%s (%+v)", n, s))
			}
		}
		if len(waiting) > 0 {
			return fmt.Errorf("modules not Loaded yet: %s", strings.Join(waiting, ", "))
		}
		return nil
	})
	return took
}

// reconcileSamples creates one sample object per example module and waits
// until each module has done its work on it; it returns how long each took.
func reconcileSamples(t *testing.T) map[string]time.Duration {
	t.Helper()
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	dyn := dynamic.NewForConfigOrDie(cp.Config())
	ns, teamA, teamB := controlplane.Namespace(t, cp), controlplane.Namespace(t, cp), controlplane.Namespace(t, cp)

	created := map[string]time.Time{}
	created["status-sync"] = time.Now()
	_, err := dyn.Resource(widgets).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w"},
		"spec":     map[string]any{"desired": "blue"},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	created["configmap-replicator"] = time.Now()
	_, err = admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Annotations: map[string]string{"wre.dev/replicate-to": teamA + "," + teamB}},
		Data:       map[string]string{"log-level": "info"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	created["app-operator"] = time.Now()
	app, err := dyn.Resource(apps).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "demo.wre.dev/v1", "kind": "App",
		"metadata": map[string]any{"name": "hello"},
		"spec":     map[string]any{"image": "nginx:1.27", "replicas": int64(2), "port": int64(80)},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)

	done := map[string]func() error{
		"status-sync": func() error {
			w, err := dyn.Resource(widgets).Namespace(ns).Get(ctx, "w", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got, _, _ := unstructured.NestedString(w.Object, "status", "current"); got != "blue" {
				return fmt.Errorf("Widget status.current %q, want blue", got)
			}
			return nil
		},
		"configmap-replicator": func() error {
			for _, target := range []string{teamA, teamB} {
				c, err := admin.CoreV1().ConfigMaps(target).Get(ctx, "settings", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if c.Data["log-level"] != "info" {
					return fmt.Errorf("copy in %s holds %v", target, c.Data)
				}
			}
			return nil
		},
		"app-operator": func() error {
			dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
			if err != nil {
				return err
			}
			svc, err := admin.CoreV1().Services(ns).Get(ctx, "hello", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, o := range []metav1.Object{dep, svc} {
				if ref := metav1.GetControllerOf(o); ref == nil || ref.UID != app.GetUID() {
					return fmt.Errorf("%s is not controlled by the App: %v", o.GetName(), o.GetOwnerReferences())
				}
			}
			if *dep.Spec.Replicas != 2 || dep.Spec.Template.Spec.Containers[0].Image != "nginx:1.27" {
				return fmt.Errorf("Deployment %d×%s, want 2×nginx:1.27", *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Image)
			}
			a, err := dyn.Resource(apps).Namespace(ns).Get(ctx, "hello", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if g, _, _ := unstructured.NestedInt64(a.Object, "status", "observedGeneration"); g != a.GetGeneration() {
				return fmt.Errorf("App status.observedGeneration %d, want %d", g, a.GetGeneration())
			}
			return nil
		},
	}
	took := map[string]time.Duration{}
	eventually(t, 2*time.Minute, func() error {
		var errs []error
		for m, f := range done {
			if _, ok := took[m]; ok {
				continue
			}
			if err := f(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m, err))
				continue
			}
			took[m] = time.Since(created[m])
		}
		return errors.Join(errs...)
	})
	return took
}

// checkEngineDenied acts as the engine with the examples overlay's RBAC:
// what no example module needs stays denied.
func checkEngineDenied(t *testing.T) {
	engine := kubernetes.NewForConfigOrDie(cp.ServiceAccountConfig(engineNamespace, engineSA))
	other := controlplane.Namespace(t, cp)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}, StringData: map[string]string{"k": "v"}}
	_, refused := run(t, []check{
		{"read Secrets in wre-system", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Secrets(engineNamespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"read Secrets in another namespace", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Secrets(other).Get(ctx, "x", metav1.GetOptions{})
			return err
		}},
		{"write a Secret in another namespace", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Secrets(other).Create(ctx, secret, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"write a Pod in another namespace", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Pods(other).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"write a Role in another namespace", false, func(ctx context.Context) error {
			_, err := engine.RbacV1().Roles(other).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
	})
	t.Logf("%d actions outside the examples overlay's RBAC denied to the running engine's identity", refused)
}

// collectorFamilies are the metric families of each collector the engine
// registers, each of which must be served once modules run.
var collectorFamilies = map[string][]string{
	"engine (controllers)":   {"controller_runtime_reconcile_total", "controller_runtime_reconcile_errors_total", "controller_runtime_reconcile_time_seconds", "controller_runtime_active_workers", "controller_runtime_max_concurrent_reconciles"},
	"work queues":            {"workqueue_depth", "workqueue_depth_by_priority", "workqueue_adds_total", "workqueue_retries_total", "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds", "workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds"},
	"leader election":        {"leader_election_master_status"},
	"client-go REST client":  {"rest_client_requests_total", "rest_client_request_duration_seconds"},
	"shared informers":       {"wre_informer_references", "wre_informer_synced"},
	"wasm host":              {"wre_host_calls_total", "wre_host_call_duration_seconds", "wre_guest_traps_total", "wre_module_instances", "wre_guest_memory_bytes", "wre_module_compile_seconds"},
	"module registry":        {"wre_module_info", "wre_module_loads_total", "wre_module_load_seconds"},
	"Go runtime and process": {"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds"},
}

// checkCollectors proves that every collector is registered and served,
// with the series of every running module.
func checkCollectors(t *testing.T, m samples) {
	for collector, names := range collectorFamilies {
		for _, n := range names {
			_, ok := m[n]
			assert.True(t, ok, "%s: family %s not served", collector, n)
		}
	}
	one := func(name string, match map[string]string) float64 {
		v, n := m.sum(name, match)
		assert.Positive(t, n, "no series %s %v", name, match)
		return v
	}
	assert.Equal(t, 1.0, one("leader_election_master_status", map[string]string{"name": leaseName}))
	assert.Positive(t, one("rest_client_requests_total", map[string]string{"code": "200"}))
	assert.Positive(t, one("wre_module_load_seconds", nil))
	assert.Positive(t, one("wre_module_compile_seconds", nil))
	for _, mod := range deploy.ExampleModules {
		assert.Equal(t, 1.0, one("wre_module_info", map[string]string{"module": mod}), mod)
		assert.Equal(t, 1.0, one("wre_module_loads_total", map[string]string{"module": mod, "result": "success"}), mod)
		assert.Equal(t, 0.0, one("wre_module_loads_total", map[string]string{"module": mod, "result": "error"}), "%s: the error series exists at 0 before the first failure", mod)
		assert.Positive(t, one("controller_runtime_reconcile_total", map[string]string{"controller": mod, "result": "success"}), mod)
		assert.Positive(t, one("workqueue_adds_total", map[string]string{"name": mod}), mod)
		assert.Positive(t, one("wre_host_calls_total", map[string]string{"module": mod, "code": "200"}), mod)
		assert.Equal(t, 0.0, one("wre_host_calls_total", map[string]string{"module": mod, "code": "403"}), mod)
		assert.Equal(t, 0.0, one("wre_guest_traps_total", map[string]string{"module": mod}), mod)
		assert.Positive(t, one("wre_module_instances", map[string]string{"module": mod}), mod)
		assert.Positive(t, one("wre_guest_memory_bytes", map[string]string{"module": mod}), mod)
	}
	for _, r := range []string{"widgets", "apps", "configmaps", "deployments", "services"} {
		assert.Equal(t, 1.0, one("wre_informer_synced", map[string]string{"resource": r}), r)
		assert.Positive(t, one("wre_informer_references", map[string]string{"resource": r}), r)
	}
}

// checkLoadFailure applies a version of status-sync whose manifest names an
// ABI the wasm does not export: the engine refuses it, keeps running the
// loaded version, counts the failure on the series that existed at 0 (so
// increase() sees the first failure) and WreModuleLoadFailed fires.
func checkLoadFailure(t *testing.T, e *engine, prom string) {
	ctx := t.Context()
	before, err := e.modules(ctx)
	require.NoError(t, err)
	running := before["status-sync"].Digest
	require.NotEmpty(t, running)

	admin := kubernetes.NewForConfigOrDie(cp.Config())
	cms := admin.CoreV1().ConfigMaps(engineNamespace)
	part0, err := cms.Get(ctx, "wre-module-status-sync", metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, part0.Data["module.yaml"], "abi: v2\n")
	part0.Data["module.yaml"] = strings.Replace(part0.Data["module.yaml"], "abi: v2\n", "abi: v9\n", 1)
	_, err = cms.Update(ctx, part0, metav1.UpdateOptions{})
	require.NoError(t, err)

	eventually(t, 60*time.Second, func() error {
		st, err := e.modules(ctx)
		if err != nil {
			return err
		}
		if s := st["status-sync"]; s.State != "LoadFailed" || s.Digest != running {
			return fmt.Errorf("status-sync: %+v, want LoadFailed still running %s", s, running)
		}
		return nil
	})
	st, err := e.modules(ctx)
	require.NoError(t, err)
	t.Logf("refused: %s", st["status-sync"].LastError)
	// The WreModule says the old version still serves and why the new one
	// does not.
	wm := waitWreModule(t, "status-sync", modulestatus.PhaseDegraded, running)
	assert.Equal(t, st["status-sync"].LastError, wm["lastError"])
	_, m := e.scrape(t)
	v, _ := m.sum("wre_module_loads_total", map[string]string{"module": "status-sync", "result": "error"})
	assert.Equal(t, 1.0, v)

	// The loaded version still reconciles.
	dyn := dynamic.NewForConfigOrDie(cp.Config())
	ns := controlplane.Namespace(t, cp)
	_, err = dyn.Resource(widgets).Namespace(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "after-failure"},
		"spec":     map[string]any{"desired": "green"},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	eventually(t, 60*time.Second, func() error {
		w, err := dyn.Resource(widgets).Namespace(ns).Get(ctx, "after-failure", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got, _, _ := unstructured.NestedString(w.Object, "status", "current"); got != "green" {
			return fmt.Errorf("Widget status.current %q, want green", got)
		}
		return nil
	})

	// increase() over the pre-created series sees the first failure.
	eventually(t, 60*time.Second, func() error {
		_, n, err := promQuery(t, prom, `increase(wre_module_loads_total{job="wre", module="status-sync", result="error"}[1m]) > 0`)
		if err == nil && n == 0 {
			err = errors.New("increase() of the load errors of status-sync is still 0")
		}
		return err
	})
	checkAlertRules(t, prom, map[string]string{"WreModuleLoadFailed": "status-sync"})
}

// moduleDigest returns the digest /modules reports for module.
func (e *engine) moduleDigest(t *testing.T, module string) string {
	t.Helper()
	st, err := e.modules(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, st[module].Digest, module)
	return st[module].Digest
}

// waitWreModule waits until the WreModule of module has phase and digest, and
// returns its status.
func waitWreModule(t *testing.T, module, phase, digest string) map[string]any {
	t.Helper()
	res := dynamic.NewForConfigOrDie(cp.Config()).Resource(modulestatus.GVR).Namespace(engineNamespace)
	var status map[string]any
	eventually(t, 60*time.Second, func() error {
		obj, err := res.Get(t.Context(), module, metav1.GetOptions{})
		if err != nil {
			return err
		}
		status, _, _ = unstructured.NestedMap(obj.Object, "status")
		if status["phase"] != phase || status["digest"] != digest {
			return fmt.Errorf("WreModule %s status %v, want phase %s and digest %s", module, status, phase, digest)
		}
		return nil
	})
	return status
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
