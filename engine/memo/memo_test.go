package memo_test

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/engine/memo"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

// recorder is a Recorder whose outcomes the test sets per request.
type recorder struct {
	mu      sync.Mutex
	runs    map[string]int
	changed map[string]string                                 // what Changed reports for a request's read set
	outcome map[string]func() (reconcile.Result, bool, error) // result, reusable, error
	sets    map[*host.ReadSet]string
}

func newRecorder() *recorder {
	return &recorder{runs: map[string]int{}, changed: map[string]string{}, outcome: map[string]func() (reconcile.Result, bool, error){}, sets: map[*host.ReadSet]string{}}
}

func (r *recorder) ReconcileReads(_ context.Context, req reconcile.Request) (reconcile.Result, *host.ReadSet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[req.Name]++
	res, reusable, err := reconcile.Result{}, true, error(nil)
	if f := r.outcome[req.Name]; f != nil {
		res, reusable, err = f()
	}
	if !reusable {
		return res, nil, err // a nil read set is not reusable
	}
	rs := &host.ReadSet{} // reads nothing: reusable
	r.sets[rs] = req.Name
	return res, rs, err
}

func (r *recorder) Changed(rs *host.ReadSet) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed[r.sets[rs]]
}

func (r *recorder) set(name, changed string, outcome func() (reconcile.Result, bool, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed[name], r.outcome[name] = changed, outcome
}

func (r *recorder) ran(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[name]
}

func req(name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
}

func newMemo(t *testing.T, rec memo.Recorder, size int) (*memo.Reconciler, *memo.Metrics) {
	t.Helper()
	metrics, err := memo.NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	m, err := memo.New(rec, memo.Options{Module: "mod", Size: size, Metrics: metrics})
	require.NoError(t, err)
	return m, metrics
}

func TestSkipRule(t *testing.T) {
	ok := func() (reconcile.Result, bool, error) { return reconcile.Result{}, true, nil }
	tests := []struct {
		name string
		// first is the outcome of the first reconcile; changed what the
		// second one's check finds.
		first    func() (reconcile.Result, bool, error)
		changed  string
		wantRuns int
	}{
		{"unchanged no-op is skipped", ok, "", 1},
		{"a changed read runs", ok, "get configmaps ns/a: changed", 2},
		{"a write (or event) is never a basis", func() (reconcile.Result, bool, error) { return reconcile.Result{}, false, nil }, "", 2},
		{"an error is never a basis", func() (reconcile.Result, bool, error) { return reconcile.Result{}, true, errors.New("boom") }, "", 2},
		{"a requeue is never a basis", func() (reconcile.Result, bool, error) { return reconcile.Result{RequeueAfter: time.Second}, true, nil }, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			m, metrics := newMemo(t, rec, 0)
			rec.set("a", tt.changed, tt.first)
			_, _ = m.Reconcile(t.Context(), req("a"))
			rec.set("a", tt.changed, ok)
			res, err := m.Reconcile(t.Context(), req("a"))
			require.NoError(t, err)
			assert.Equal(t, reconcile.Result{}, res)
			assert.Equal(t, tt.wantRuns, rec.ran("a"))
			assert.Equal(t, float64(2-tt.wantRuns), testutil.ToFloat64(metrics.Skipped.WithLabelValues("mod")))
			assert.Equal(t, int64(2-tt.wantRuns), m.Skipped())
		})
	}
}

func TestWriteThenNoOpThenSkip(t *testing.T) {
	rec := newRecorder()
	m, _ := newMemo(t, rec, 0)
	rec.set("a", "", func() (reconcile.Result, bool, error) { return reconcile.Result{}, false, nil })
	_, _ = m.Reconcile(t.Context(), req("a")) // wrote
	rec.set("a", "", nil)
	_, _ = m.Reconcile(t.Context(), req("a")) // runs: changed nothing
	_, _ = m.Reconcile(t.Context(), req("a")) // skipped
	assert.Equal(t, 2, rec.ran("a"), "the run after the write is the basis of the skip")
	assert.Equal(t, 1, m.Len())

	rec.set("a", "list x: objects joined, left or changed", func() (reconcile.Result, bool, error) { return reconcile.Result{}, true, errors.New("boom") })
	_, err := m.Reconcile(t.Context(), req("a"))
	require.Error(t, err)
	assert.Equal(t, 0, m.Len(), "a failed run drops the read set")
}

func TestChangedEntryIsLogged(t *testing.T) {
	var (
		mu    sync.Mutex
		lines []string
	)
	ctx := logr.NewContext(t.Context(), funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{Verbosity: 1}))
	rec := newRecorder()
	m, _ := newMemo(t, rec, 0)
	_, _ = m.Reconcile(ctx, req("a"))
	rec.set("a", "get deployments.apps ns/a: changed", nil)
	_, _ = m.Reconcile(ctx, req("a"))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], `"msg"="Memoized reconcile runs" "changed"="get deployments.apps ns/a: changed"`)
}

func TestLeastRecentlyUsedIsEvicted(t *testing.T) {
	rec := newRecorder()
	m, metrics := newMemo(t, rec, 2)
	for _, name := range []string{"a", "b", "a", "c"} { // a: run, b: run, a: skip (used), c: run, evicts b
		_, _ = m.Reconcile(t.Context(), req(name))
	}
	assert.Equal(t, 2, m.Len())
	assert.Equal(t, 1.0, testutil.ToFloat64(metrics.Evictions.WithLabelValues("mod")))
	assert.Equal(t, 2.0, testutil.ToFloat64(metrics.Entries.WithLabelValues("mod")))
	_, _ = m.Reconcile(t.Context(), req("a"))
	_, _ = m.Reconcile(t.Context(), req("b"))
	assert.Equal(t, map[string]int{"a": 1, "b": 2, "c": 1}, rec.runs, "the evicted request runs; the others are skipped")

	m.Close()
	m.Close()
	assert.Equal(t, 0, m.Len())
	assert.Equal(t, 0.0, testutil.ToFloat64(metrics.Entries.WithLabelValues("mod")))
	_, _ = m.Reconcile(t.Context(), req("a"))
	assert.Equal(t, 0, m.Len(), "a closed memo holds nothing")
}

func TestOptionsAndMetrics(t *testing.T) {
	_, err := memo.New(newRecorder(), memo.Options{})
	require.Error(t, err)
	m, err := memo.New(newRecorder(), memo.Options{Module: "mod"})
	require.NoError(t, err)
	_, _ = m.Reconcile(t.Context(), req("a"))

	reg := prometheus.NewRegistry()
	metrics, err := memo.NewMetrics(reg)
	require.NoError(t, err)
	metrics.InitModule("mod")
	n, err := testutil.GatherAndCount(reg, "wre_reconciles_skipped_total", "wre_memo_entries", "wre_memo_evictions_total", "wre_read_set_objects")
	require.NoError(t, err)
	assert.Equal(t, 4, n, "every series exists up front")
	metrics.RemoveModule("mod")
	n, err = testutil.GatherAndCount(reg)
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = memo.NewMetrics(reg)
	assert.Error(t, err, "registered twice")
}

// noop reads nothing and changes nothing; every request shares one read set.
type noop struct{ rs *host.ReadSet }

func (n noop) ReconcileReads(context.Context, reconcile.Request) (reconcile.Result, *host.ReadSet, error) {
	return reconcile.Result{}, n.rs, nil
}
func (noop) Changed(*host.ReadSet) string { return "" }

// BenchmarkEntryOverhead reports the heap one held request costs beyond its
// read set (retained-B/entry), for docs/operations.md.
func BenchmarkEntryOverhead(b *testing.B) {
	m, err := memo.New(noop{&host.ReadSet{}}, memo.Options{Module: "mod", Size: b.N})
	require.NoError(b, err)
	reqs := make([]reconcile.Request, b.N)
	for i := range reqs {
		reqs[i] = req(fmt.Sprintf("object-%07d", i))
	}
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	for _, r := range reqs {
		_, _ = m.Reconcile(b.Context(), r)
	}
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	require.Equal(b, b.N, m.Len())
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(b.N), "retained-B/entry")
}

// TestWithAHostModule runs the rule over a real module (the lean test guest
// of host/testdata): a no-op reconcile of an object is remembered and then
// skipped until a field the guest reads changes; an object that is gone is
// not remembered.
func TestWithAHostModule(t *testing.T) {
	configMaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	h := wasmtest.New(t, wasmtest.Build(t, "../../host/testdata/guests/lean"), wasmtest.Options{
		Objects: []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Data: map[string]string{"k": "v"}}},
		Cached:  []schema.GroupVersionResource{configMaps},
	})
	m, metrics := newMemo(t, h.Module, 0)
	_, err := m.Reconcile(t.Context(), req("gone"))
	require.NoError(t, err)
	assert.Zero(t, m.Len(), "an object that is gone is not remembered")

	for range 3 {
		_, err = m.Reconcile(t.Context(), req("a"))
		require.NoError(t, err)
	}
	assert.Equal(t, 1, m.Len())
	assert.Equal(t, 2.0, testutil.ToFloat64(metrics.Skipped.WithLabelValues("mod")))

	cm, err := h.Get(t.Context(), configMaps, "ns", "a")
	require.NoError(t, err)
	require.NoError(t, unstructured.SetNestedField(cm.Object, "w", "data", "k"))
	_, err = h.Client.Resource(configMaps).Namespace("ns").Update(t.Context(), cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	_, err = m.Reconcile(t.Context(), req("a"))
	require.NoError(t, err)
	assert.Equal(t, 2.0, testutil.ToFloat64(metrics.Skipped.WithLabelValues("mod")), "a read field changed: it ran")
}
