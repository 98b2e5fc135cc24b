package handler

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/queue"
	"github.com/wre-dev/wre/host/reconcile"
)

// added is one AddWithPriority call.
type added struct {
	req string
	p   queue.Priority
}

// recorder is an Enqueuer that records its calls.
type recorder struct {
	mu    sync.Mutex
	added []added
}

func (r *recorder) AddWithPriority(req reconcile.Request, p queue.Priority) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.added = append(r.added, added{req.String(), p})
}

func (r *recorder) calls() []added {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]added(nil), r.added...)
}

var _ Enqueuer = (*recorder)(nil)

// pod returns a Pod with the given resourceVersion and generation.
func pod(namespace, name, rv string, generation int64, owners ...metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: namespace, Name: name, ResourceVersion: rv, Generation: generation, OwnerReferences: owners,
	}}
}

// ref returns an owner reference; controller marks the controller reference.
func ref(apiVersion, kind, name string, controller bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID(name), Controller: ptr.To(controller)}
}

// event delivers one informer event to h.
type event func(h cache.ResourceEventHandler)

func add(obj any, initial bool) event {
	return func(h cache.ResourceEventHandler) { h.OnAdd(obj, initial) }
}

func update(oldObj, newObj any) event {
	return func(h cache.ResourceEventHandler) { h.OnUpdate(oldObj, newObj) }
}

func del(obj any) event {
	return func(h cache.ResourceEventHandler) { h.OnDelete(obj) }
}

func TestForObject(t *testing.T) {
	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: pod("ns", "gone", "9", 1)}
	tests := []struct {
		name  string
		opts  []Option
		event event
		want  []added
	}{
		{name: "initial list add", event: add(pod("ns", "a", "1", 1), true), want: []added{{"ns/a", queue.PriorityLow}}},
		{name: "live add", event: add(pod("ns", "a", "1", 1), false), want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "cluster-scoped add", event: add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n"}}, false), want: []added{{"n", queue.PriorityNormal}}},
		{name: "update", event: update(pod("ns", "a", "1", 1), pod("ns", "a", "2", 1)), want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "resync dropped", event: update(pod("ns", "a", "1", 1), pod("ns", "a", "1", 1))},
		{name: "resync kept at low priority", opts: []Option{EnqueueResyncs()}, event: update(pod("ns", "a", "1", 1), pod("ns", "a", "1", 1)), want: []added{{"ns/a", queue.PriorityLow}}},
		{name: "resync kept bypasses predicates", opts: []Option{EnqueueResyncs(), GenerationChanged()}, event: update(pod("ns", "a", "1", 1), pod("ns", "a", "1", 1)), want: []added{{"ns/a", queue.PriorityLow}}},
		{name: "generation changed", opts: []Option{GenerationChanged()}, event: update(pod("ns", "a", "1", 1), pod("ns", "a", "2", 2)), want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "status-only update ignored", opts: []Option{GenerationChanged()}, event: update(pod("ns", "a", "1", 1), pod("ns", "a", "2", 1))},
		{name: "every predicate must pass", opts: []Option{GenerationChanged(), Predicate(func(_, n metav1.Object) bool { return n.GetName() != "a" })}, event: update(pod("ns", "a", "1", 1), pod("ns", "a", "2", 2))},
		{name: "predicates do not see adds", opts: []Option{Predicate(func(_, _ metav1.Object) bool { return false })}, event: add(pod("ns", "a", "1", 1), false), want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "owner scope option ignored", opts: []Option{OwnerClusterScoped()}, event: add(pod("ns", "a", "1", 1), false), want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "delete", event: del(pod("ns", "a", "3", 1)), want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "delete tombstone", event: del(tombstone), want: []added{{"ns/gone", queue.PriorityNormal}}},
		{name: "delete pointer to tombstone is not an object", event: del(&tombstone)},
		{name: "add of a non-object", event: add("garbage", false)},
		{name: "update from a non-object", event: update("garbage", pod("ns", "a", "1", 1))},
		{name: "update to a non-object", event: update(pod("ns", "a", "1", 1), "garbage")},
		{name: "tombstone without object", event: del(cache.DeletedFinalStateUnknown{Key: "ns/x"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &recorder{}
			tt.event(ForObject(q, tt.opts...))
			assert.Equal(t, tt.want, q.calls())
		})
	}
}

func TestForOwner(t *testing.T) {
	rsGVK := appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	rsA := ref("apps/v1", "ReplicaSet", "a", true)
	rsB := ref("apps/v1", "ReplicaSet", "b", false)
	rsC := ref("apps/v1beta2", "ReplicaSet", "c", false)
	other := []metav1.OwnerReference{
		ref("example.com/v1", "ReplicaSet", "other-group", true),
		ref("apps/v1", "Deployment", "other-kind", true),
		ref("not/a/version", "ReplicaSet", "bad-version", true),
	}
	tests := []struct {
		name           string
		onlyController bool
		opts           []Option
		event          event
		want           []added
	}{
		{name: "initial add maps to every matching owner", event: add(pod("ns", "p", "1", 1, rsA, rsB, rsC), true),
			want: []added{{"ns/a", queue.PriorityLow}, {"ns/b", queue.PriorityLow}, {"ns/c", queue.PriorityLow}}},
		{name: "only the controller", onlyController: true, event: add(pod("ns", "p", "1", 1, rsB, rsA), false),
			want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "controller flag unset", onlyController: true, event: add(pod("ns", "p", "1", 1, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "x"}), false)},
		{name: "other groups, kinds and bad versions ignored", event: add(pod("ns", "p", "1", 1, other...), false)},
		{name: "no owners", event: add(pod("ns", "p", "1", 1), false)},
		{name: "cluster-scoped owner", opts: []Option{OwnerClusterScoped()}, event: add(pod("ns", "p", "1", 1, rsA), false),
			want: []added{{"a", queue.PriorityNormal}}},
		{name: "same owner twice enqueued once", event: add(pod("ns", "p", "1", 1, rsA, rsA), false),
			want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "update", event: update(pod("ns", "p", "1", 1, rsA), pod("ns", "p", "2", 1, rsA)),
			want: []added{{"ns/a", queue.PriorityNormal}}},
		{name: "update filtered", opts: []Option{GenerationChanged()}, event: update(pod("ns", "p", "1", 1, rsA), pod("ns", "p", "2", 1, rsA))},
		{name: "owner change enqueues old and new owner despite predicates", opts: []Option{GenerationChanged()},
			event: update(pod("ns", "p", "1", 1, rsA), pod("ns", "p", "2", 1, rsB)),
			want:  []added{{"ns/a", queue.PriorityNormal}, {"ns/b", queue.PriorityNormal}}},
		{name: "owner removed", event: update(pod("ns", "p", "1", 1, rsA, rsB), pod("ns", "p", "2", 1, rsB)),
			want: []added{{"ns/a", queue.PriorityNormal}, {"ns/b", queue.PriorityNormal}}},
		{name: "owners reordered is no change", opts: []Option{GenerationChanged()},
			event: update(pod("ns", "p", "1", 1, rsA, rsB), pod("ns", "p", "2", 1, rsB, rsA))},
		{name: "resync dropped", event: update(pod("ns", "p", "1", 1, rsA), pod("ns", "p", "1", 1, rsA))},
		{name: "resync kept", opts: []Option{EnqueueResyncs()}, event: update(pod("ns", "p", "1", 1, rsA), pod("ns", "p", "1", 1, rsA)),
			want: []added{{"ns/a", queue.PriorityLow}}},
		{name: "delete tombstone", event: del(cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod("ns", "p", "1", 1, rsA)}),
			want: []added{{"ns/a", queue.PriorityNormal}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &recorder{}
			tt.event(ForOwner(q, rsGVK, tt.onlyController, tt.opts...))
			assert.Equal(t, tt.want, q.calls())
		})
	}
}

func TestNonObjectsAreReported(t *testing.T) {
	var reported []string
	var mu sync.Mutex
	orig := utilruntime.ErrorHandlers
	utilruntime.ErrorHandlers = []utilruntime.ErrorHandler{func(_ context.Context, err error, _ string, _ ...any) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err.Error())
	}}
	t.Cleanup(func() { utilruntime.ErrorHandlers = orig })

	ForObject(&recorder{}).OnAdd(42, false)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reported, 1)
	assert.Contains(t, reported[0], "add event for int without object metadata")
}

func TestEqualRequests(t *testing.T) {
	r := func(names ...string) []reconcile.Request {
		out := make([]reconcile.Request, 0, len(names))
		for _, n := range names {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: n}})
		}
		return out
	}
	tests := []struct {
		a, b []reconcile.Request
		want bool
	}{
		{r(), r(), true},
		{r("a"), r("a"), true},
		{r("a", "b"), r("b", "a"), true},
		{r("a", "a"), r("a"), true},
		{r("a"), r("b"), false},
		{r("a"), r("a", "b"), false},
		{r("a", "b"), r("a"), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.a, tt.b), func(t *testing.T) {
			assert.Equal(t, tt.want, equalRequests(tt.a, tt.b))
		})
	}
}

func TestGenerationChanged(t *testing.T) {
	p := GenerationChanged()
	assert.True(t, p(pod("ns", "a", "1", 1), pod("ns", "a", "2", 2)))
	assert.False(t, p(pod("ns", "a", "1", 1), pod("ns", "a", "2", 1)))
}
