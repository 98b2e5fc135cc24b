package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/registry"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/wasmtest"
	"github.com/wre-dev/wre/test/controlplane"
)

// leanManifest is the lean test guest (host/testdata/guests/lean) over
// ConfigMaps: list-* lists the ConfigMaps labelled like it and logs the
// count, missing-* gets a ConfigMap that does not exist.
const leanManifest = `apiVersion: wre.dev/v1alpha1
kind: Module
name: %s
abi: v2
for: {version: v1, resource: configmaps, kind: ConfigMap}
memoize: %t
permissions:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get, list, watch]
`

// guestLog collects the guest lines of the lean modules, by module and object.
type guestLog struct {
	mu    sync.Mutex
	lines map[string][]string // "module object" -> messages
}

func (l *guestLog) sink(obj string) {
	var m struct {
		Msg    string `json:"msg"`
		Module string `json:"module"`
		Object string `json:"object"`
	}
	if json.Unmarshal([]byte(obj), &m) != nil || m.Object == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := m.Module + " " + m.Object
	l.lines[k] = append(l.lines[k], m.Msg)
}

// of returns the lines module logged reconciling object.
func (l *guestLog) of(module, object string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[module+" "+object]...)
}

// memoEnv runs two lean modules over the ConfigMaps of a namespace: memo
// (memoize: true) and plain (not memoized).
type memoEnv struct {
	t    *testing.T
	ns   string
	reg  *registry.Registry
	cms  typedcorev1.ConfigMapInterface
	logs *guestLog
}

func newMemoEnv(t *testing.T) *memoEnv {
	ctx := t.Context()
	e := &memoEnv{t: t, ns: controlplane.Namespace(t, cp), logs: &guestLog{lines: map[string][]string{}}}
	_, e.reg = startEngine(t, e.ns, host.RuntimeOptions{Logger: funcr.NewJSON(e.logs.sink, funcr.Options{})})
	e.cms = kubernetes.NewForConfigOrDie(cp.Config()).CoreV1().ConfigMaps(e.ns)
	wasm := wasmtest.Build(t, "../../host/testdata/guests/lean")
	for _, name := range []string{"memo", "plain"} {
		m, err := modules.ParseManifest(fmt.Appendf(nil, leanManifest, name, name == "memo"))
		require.NoError(t, err)
		pkg, err := modules.Package(m, wasm, modules.PackageOptions{Namespace: e.ns})
		require.NoError(t, err)
		for _, cm := range pkg {
			_, err := e.cms.Create(ctx, cm, metav1.CreateOptions{})
			require.NoError(t, err)
		}
	}
	for _, name := range []string{"memo", "plain"} {
		require.Eventually(t, func() bool {
			st, ok := status(e.reg, name)
			return ok && st.State == registry.StateLoaded
		}, 2*time.Minute, 20*time.Millisecond)
	}
	return e
}

func (e *memoEnv) create(name string, labels, data map[string]string) {
	e.t.Helper()
	_, err := e.cms.Create(e.t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: data}, metav1.CreateOptions{})
	require.NoError(e.t, err)
}

func (e *memoEnv) update(name string, change func(cm *corev1.ConfigMap)) {
	e.t.Helper()
	require.NoError(e.t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := e.cms.Get(e.t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(cm)
		_, err = e.cms.Update(e.t.Context(), cm, metav1.UpdateOptions{})
		return err
	}))
}

// touch changes an annotation of name: a field the lean guest does not read.
func (e *memoEnv) touch(name string) {
	e.update(name, func(cm *corev1.ConfigMap) {
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations["touched"] = time.Now().Format(time.RFC3339Nano)
	})
}

func (e *memoEnv) skipped() int64 {
	st, _ := status(e.reg, "memo")
	return st.Skipped
}

// step makes a change and then touches object (an event the guest would
// not otherwise need), and checks that the memoized module runs when run is
// true and skips otherwise, while the plain module always runs.
func (e *memoEnv) step(what, object string, run bool, change func()) {
	e.t.Helper()
	obj := e.ns + "/" + object
	memoBefore, plainBefore, skippedBefore := len(e.logs.of("memo", obj)), len(e.logs.of("plain", obj)), e.skipped()
	change()
	e.touch(object)
	require.Eventually(e.t, func() bool { return len(e.logs.of("plain", obj)) > plainBefore },
		time.Minute, 10*time.Millisecond, "%s: the module that is not memoized runs", what)
	if run {
		require.Eventually(e.t, func() bool { return len(e.logs.of("memo", obj)) > memoBefore },
			time.Minute, 10*time.Millisecond, "%s: the memoized module runs", what)
		return
	}
	require.Eventually(e.t, func() bool { return e.skipped() > skippedBefore }, time.Minute, 10*time.Millisecond, "%s: skipped", what)
	assert.Len(e.t, e.logs.of("memo", obj), memoBefore, "%s: the memoized module did not run", what)
}

// TestMemoizedModuleSkipsOnlyUnchangedReads reconciles through the informer
// cache of a real control plane: a memoized module skips a reconcile whose
// reads are unchanged (a change to a field it does not read), and runs on
// every kind of read-set change; a module that is not memoized always runs.
func TestMemoizedModuleSkipsOnlyUnchangedReads(t *testing.T) {
	e := newMemoEnv(t)
	web := map[string]string{"app": "web"}
	e.create("web-1", web, map[string]string{"k": "v"})
	e.create("db-1", map[string]string{"app": "db"}, nil)
	e.create("list-a", web, nil)
	e.create("missing-a", nil, nil)
	for _, obj := range []string{"list-a", "missing-a"} {
		require.Eventually(t, func() bool { return len(e.logs.of("memo", e.ns+"/"+obj)) > 0 }, time.Minute, 10*time.Millisecond)
	}

	nothing := func() {}
	e.step("an unread field of the primary", "list-a", false, nothing)
	e.step("a read field of the primary", "list-a", true, func() {
		e.update("list-a", func(cm *corev1.ConfigMap) { cm.Data = map[string]string{"x": "1"} })
	})
	e.step("an unread field of a listed object", "list-a", false, func() { e.touch("web-1") })
	e.step("a read field of a listed object", "list-a", true, func() {
		e.update("web-1", func(cm *corev1.ConfigMap) { cm.Data["k"] = "w" })
	})
	e.step("an object newly matches the selector", "list-a", true, func() {
		e.update("db-1", func(cm *corev1.ConfigMap) { cm.Labels["app"] = "web" })
	})
	e.step("an object stops matching the selector", "list-a", true, func() {
		e.update("db-1", func(cm *corev1.ConfigMap) { cm.Labels["app"] = "db" })
	})
	e.step("a read object was deleted", "list-a", true, func() {
		require.NoError(t, e.cms.Delete(t.Context(), "web-1", metav1.DeleteOptions{}))
	})
	e.step("a not-found object is still missing", "missing-a", false, nothing)
	e.step("a not-found object is created", "missing-a", true, func() { e.create("does-not-exist", nil, nil) })
	assert.Equal(t, []string{"missing notFound=true", "missing notFound=false"}, dedupe(e.logs.of("memo", e.ns+"/missing-a")))

	obj := e.ns + "/list-a"
	before := len(e.logs.of("memo", obj))
	require.NoError(t, e.cms.Delete(t.Context(), "list-a", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return len(e.logs.of("memo", obj)) > before }, time.Minute, 10*time.Millisecond, "a deleted primary runs")
	assert.True(t, strings.HasPrefix(e.logs.of("memo", obj)[before], "gone "), "the guest got no object")
}

// dedupe drops consecutive repeats.
func dedupe(lines []string) []string {
	var out []string
	for _, l := range lines {
		if len(out) == 0 || out[len(out)-1] != l {
			out = append(out, l)
		}
	}
	return out
}

// TestMemoizedModuleNeverMissesAConcurrentChange races writers that move
// ConfigMaps in and out of a listed selector against a stream of events of
// the listing object, whose skip decisions run meanwhile: once the writers
// stop, one more event must leave the module's last run having seen the
// final list, whether that event runs or is skipped.
func TestMemoizedModuleNeverMissesAConcurrentChange(t *testing.T) {
	e := newMemoEnv(t)
	const members, rounds = 6, 10
	for i := range members {
		e.create(fmt.Sprintf("m-%d", i), map[string]string{"app": "db"}, nil)
	}
	e.create("list-r", map[string]string{"app": "web"}, nil)
	obj := e.ns + "/list-r"
	lastCount := func() string {
		lines := e.logs.of("memo", obj)
		for i := len(lines) - 1; i >= 0; i-- {
			if count, ok := strings.CutPrefix(lines[i], "listed count="); ok {
				n, _, _ := strings.Cut(count, " ")
				return n
			}
		}
		return ""
	}
	labels := make([]string, members)
	for i := range labels {
		labels[i] = "db"
	}
	for round := range rounds {
		ctx, cancel := context.WithCancel(t.Context())
		var touches sync.WaitGroup
		touches.Go(func() {
			for ctx.Err() == nil {
				e.touch("list-r")
			}
		})
		for range 8 {
			i := rand.IntN(members)
			labels[i] = map[string]string{"db": "web", "web": "db"}[labels[i]]
			e.update(fmt.Sprintf("m-%d", i), func(cm *corev1.ConfigMap) { cm.Labels["app"] = labels[i] })
		}
		cancel()
		touches.Wait()
		e.touch("list-r")
		want := 1 // list-r itself
		for _, l := range labels {
			if l == "web" {
				want++
			}
		}
		require.Eventually(t, func() bool { return lastCount() == fmt.Sprint(want) }, 30*time.Second, 10*time.Millisecond,
			"round %d: the last run of the memoized module saw the final list of %d (last seen %s)", round, want, lastCount())
	}
	assert.Positive(t, e.skipped(), "some events were skipped")
}
