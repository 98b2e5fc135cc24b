package registry_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// versionManifest is a script-guest module over Widgets whose reconcile logs
// "begin <v>", spins a little (so reconciles overlap if anything lets them),
// sets status.current to <v> and logs "end <v>": the state an object ends in
// names the version that reconciled it last.
func versionManifest(t *testing.T, version string) *modules.Manifest {
	t.Helper()
	req := func() *abi.Request {
		return &abi.Request{Group: statussync.GVR.Group, Version: statussync.GVR.Version, Resource: statussync.GVR.Resource,
			Kind: "Widget", Namespace: "$ns", Name: "$name"}
	}
	patch := req()
	patch.PatchType = abi.PatchMerge
	patch.Body = []byte(`{"status":{"current":"` + version + `"}}`)
	// The script guest's config (host/internal/guestscript.Script).
	config, err := json.Marshal(map[string]any{"steps": []map[string]any{
		{"log": "begin " + version},
		{"spin": 200_000},
		{"op": abi.OpStatusPatch, "req": patch},
		{"log": "end " + version},
	}})
	require.NoError(t, err)
	m, err := modules.ParseManifest([]byte(`apiVersion: wre.dev/v1alpha1
kind: Module
name: versions
abi: v1
for: {group: demo.wre.dev, version: v1, resource: widgets, kind: Widget}
permissions:
  - apiGroups: [demo.wre.dev]
    resources: [widgets, widgets/status]
    verbs: [get, list, watch, patch]
concurrency: 4
reconcileTimeout: 30s
config: ` + string(config) + "\n"))
	require.NoError(t, err)
	return m
}

// reconcileLog records the begin and end lines the guest logs for objects in
// namespace, in the order the host passes them on (a guest's log call returns
// only after it is recorded, so this is the order in which they happened).
// The module watches Widgets cluster-wide, so it also reconciles other tests'
// Widgets, whose status another engine writes too: those reconciles can fail
// on conflicts between begin and end, and they are not this test's to check.
type reconcileLog struct {
	namespace string
	mu        sync.Mutex
	lines     []logLine
}

type logLine struct {
	object, what, version string
}

func (l *reconcileLog) sink(obj string) {
	var m struct {
		Msg    string `json:"msg"`
		Object string `json:"object"`
	}
	if json.Unmarshal([]byte(obj), &m) != nil {
		return
	}
	what, version, ok := strings.Cut(m.Msg, " ")
	if !ok || (what != "begin" && what != "end") || !strings.HasPrefix(m.Object, l.namespace+"/") {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{m.Object, what, version})
}

// began returns how many reconciles version has begun.
func (l *reconcileLog) began(version string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if line.what == "begin" && line.version == version {
			n++
		}
	}
	return n
}

// overlaps returns, for every object, the reconciles that began while another
// of the same object was running.
func (l *reconcileLog) overlaps() (overlaps []string, reconciles map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	running := map[string]string{}
	reconciles = map[string]int{}
	for _, line := range l.lines {
		switch line.what {
		case "begin":
			if v, ok := running[line.object]; ok {
				overlaps = append(overlaps, fmt.Sprintf("%s: %s began while %s ran", line.object, line.version, v))
			}
			running[line.object] = line.version
			reconciles[line.version]++
		case "end":
			delete(running, line.object)
		}
	}
	return overlaps, reconciles
}

// TestHotReloadUnderLoad swaps two new module versions in while Widgets
// stream in: no object is ever reconciled by two versions at once, and every
// object ends in the state the last version computes, including objects that
// did not change after it loaded.
func TestHotReloadUnderLoad(t *testing.T) {
	ctx := t.Context()
	require.NoError(t, enginetest.InstallWidgetCRD(ctx, cp.Config()))
	ns := controlplane.Namespace(t, cp)
	log := &reconcileLog{namespace: ns}
	_, reg := startEngine(t, ns, host.RuntimeOptions{Logger: funcr.NewJSON(log.sink, funcr.Options{})})
	kube := kubernetes.NewForConfigOrDie(cp.Config())

	// apply ships version v (a distinct digest each) and waits until it serves.
	apply := func(v string) time.Duration {
		t.Helper()
		wasm := guest(t, v)
		cms, err := modules.Package(versionManifest(t, v), wasm, modules.PackageOptions{Namespace: ns})
		require.NoError(t, err)
		start := time.Now()
		for _, cm := range cms {
			_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			if err != nil {
				cur, getErr := kube.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
				require.NoError(t, getErr)
				cm.ResourceVersion = cur.ResourceVersion
				_, err = kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
			}
			require.NoError(t, err)
		}
		require.Eventually(t, func() bool {
			st, ok := status(reg, "versions")
			return ok && st.State == registry.StateLoaded && st.Digest == modules.Digest(wasm)
		}, 5*time.Minute, 5*time.Millisecond, "version %s serves", v)
		return time.Since(start)
	}

	widgets := dynamic.NewForConfigOrDie(cp.Config()).Resource(statussync.GVR).Namespace(ns)
	t.Logf("v1 loaded in %s", apply("v1"))
	// Widgets stream in from now until after v3 serves.
	stop, created := make(chan struct{}), make(chan int, 1)
	go func() {
		n := 0
		defer func() { created <- n }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			w := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
				"metadata": map[string]any{"name": "w" + strconv.Itoa(n)}, "spec": map[string]any{"desired": "x"}}}
			if _, err := widgets.Create(ctx, w, metav1.CreateOptions{}); err != nil {
				t.Errorf("create widget: %v", err)
				return
			}
		}
	}()
	// Each version serves some of the stream before the next is applied, so
	// every swap happens under load however fast the compilation cache is.
	serving := func(v string) {
		t.Helper()
		require.Eventually(t, func() bool { return log.began(v) >= 10 }, 2*time.Minute, 10*time.Millisecond, "%s reconciles", v)
	}
	serving("v1")
	t.Logf("v2 swapped in under load in %s", apply("v2"))
	serving("v2")
	t.Logf("v3 swapped in under load in %s", apply("v3"))
	serving("v3")
	close(stop)
	total := <-created
	t.Logf("%d widgets created during the swaps", total)

	// The stream's length depends on how long the swaps took (a cold
	// compilation cache on a loaded machine makes it thousands of Widgets), so
	// the wait is bounded by progress, not by a fixed time: it fails when no
	// Widget reaches v3's state for a minute.
	converged := func() int {
		list, err := widgets.List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		done := 0
		for _, w := range list.Items {
			if current, _, _ := unstructured.NestedString(w.Object, "status", "current"); current == "v3" {
				done++
			}
		}
		return done
	}
	waitProgressing(t, converged, total, time.Minute, "every widget ends in the state v3 computes")

	overlaps, reconciles := log.overlaps()
	assert.Empty(t, overlaps, "no object is reconciled by two versions at once")
	t.Logf("reconciles by version: %v", reconciles)
	for _, v := range []string{"v1", "v2", "v3"} {
		assert.Positive(t, reconciles[v], "version %s reconciled", v)
	}
}

// waitProgressing polls count until it reaches want. It fails when count has
// not grown for stall: a bound on progress rather than on total time, for work
// whose size depends on how loaded the machine was.
func waitProgressing(t *testing.T, count func() int, want int, stall time.Duration, msg string) {
	t.Helper()
	best, since := -1, time.Now()
	for {
		n := count()
		if n >= want {
			return
		}
		if n > best {
			best, since = n, time.Now()
		}
		if time.Since(since) > stall {
			require.FailNowf(t, msg, "%d of %d after no progress for %s", best, want, stall)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
