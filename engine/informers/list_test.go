package informers

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

var configMapsGR = schema.GroupResource{Resource: "configmaps"}

// configMap returns a ConfigMap namespace/name with labels ("k", "v" pairs).
func configMap(namespace, name string, labels ...string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if len(labels) > 0 {
		cm.Labels = map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			cm.Labels[labels[i]] = labels[i+1]
		}
	}
	return cm
}

// ownedBy adds owner references to obj's uids and returns it.
func ownedBy(cm *corev1.ConfigMap, uids ...types.UID) *corev1.ConfigMap {
	for _, uid := range uids {
		cm.OwnerReferences = append(cm.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "owner-" + string(uid), UID: uid})
	}
	return cm
}

// newStore returns an indexed store holding objs.
func newStore(t *testing.T, objs ...runtime.Object) cache.Indexer {
	t.Helper()
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, indexers)
	for _, obj := range objs {
		require.NoError(t, store.Add(obj))
	}
	return store
}

// names renders objs as "namespace/name".
func names(t *testing.T, objs []runtime.Object) []string {
	t.Helper()
	out := make([]string, 0, len(objs))
	for _, obj := range objs {
		m, err := objectMeta(obj)
		require.NoError(t, err)
		out = append(out, cache.ObjectName{Namespace: m.GetNamespace(), Name: m.GetName()}.String())
	}
	return out
}

// fixture is the store the List tests read: "a-b" sorts after "a" as a
// namespace although "a-b/…" sorts before "a/…" as a string.
func fixture(t *testing.T) cache.Indexer {
	return newStore(t,
		configMap("b", "one", "app", "web", "tier", "front"),
		configMap("a", "two", "app", "db"),
		configMap("a-b", "one", "app", "web"),
		configMap("a", "one", "app", "web", "tier", "back"),
		configMap("b", "two"),
	)
}

func TestListSelectors(t *testing.T) {
	tests := []struct {
		name      string
		namespace string
		opts      metav1.ListOptions
		want      []string
	}{
		{name: "everything in namespace/name order", want: []string{"a/one", "a/two", "a-b/one", "b/one", "b/two"}},
		{name: "namespace", namespace: "a", want: []string{"a/one", "a/two"}},
		{name: "namespace without objects", namespace: "zzz", want: []string{}},
		{name: "label equality", opts: metav1.ListOptions{LabelSelector: "app=web"}, want: []string{"a/one", "a-b/one", "b/one"}},
		{name: "label equality in namespace", namespace: "b", opts: metav1.ListOptions{LabelSelector: "app==web"}, want: []string{"b/one"}},
		{name: "label set", opts: metav1.ListOptions{LabelSelector: "app in (db,web),tier"}, want: []string{"a/one", "b/one"}},
		{name: "label inequality only", opts: metav1.ListOptions{LabelSelector: "app!=web"}, want: []string{"a/two", "b/two"}},
		{name: "label absent", opts: metav1.ListOptions{LabelSelector: "!app"}, want: []string{"b/two"}},
		{name: "label equality and exists", opts: metav1.ListOptions{LabelSelector: "tier,app=web"}, want: []string{"a/one", "b/one"}},
		{name: "field name", opts: metav1.ListOptions{FieldSelector: "metadata.name=one"}, want: []string{"a/one", "a-b/one", "b/one"}},
		{name: "field namespace", opts: metav1.ListOptions{FieldSelector: "metadata.namespace=b"}, want: []string{"b/one", "b/two"}},
		{name: "field namespace not equal", opts: metav1.ListOptions{FieldSelector: "metadata.namespace!=a"}, want: []string{"a-b/one", "b/one", "b/two"}},
		{name: "field namespace conflicting with namespace", namespace: "a", opts: metav1.ListOptions{FieldSelector: "metadata.namespace=b"}, want: []string{}},
		{name: "fields and labels", opts: metav1.ListOptions{FieldSelector: "metadata.name==two", LabelSelector: "app"}, want: []string{"a/two"}},
	}
	store := fixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, token, err := list(store, configMapsGR, tt.namespace, tt.opts)
			require.NoError(t, err)
			assert.Empty(t, token)
			assert.Equal(t, tt.want, names(t, items))
		})
	}
}

func TestListPagination(t *testing.T) {
	tests := []struct {
		name      string
		namespace string
		selector  string
		limit     int64
		want      [][]string
	}{
		{name: "pages of two", limit: 2, want: [][]string{{"a/one", "a/two"}, {"a-b/one", "b/one"}, {"b/two"}}},
		{name: "limit equal to total", limit: 5, want: [][]string{{"a/one", "a/two", "a-b/one", "b/one", "b/two"}}},
		{name: "limit above total", limit: 50, want: [][]string{{"a/one", "a/two", "a-b/one", "b/one", "b/two"}}},
		{name: "one by one with selector", selector: "app=web", limit: 1, want: [][]string{{"a/one"}, {"a-b/one"}, {"b/one"}}},
		{name: "in namespace", namespace: "b", limit: 1, want: [][]string{{"b/one"}, {"b/two"}}},
	}
	store := fixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pages [][]string
			opts := metav1.ListOptions{Limit: tt.limit, LabelSelector: tt.selector}
			for {
				items, token, err := list(store, configMapsGR, tt.namespace, opts)
				require.NoError(t, err)
				pages = append(pages, names(t, items))
				if token == "" {
					break
				}
				require.Less(t, len(pages), 10, "pagination does not end")
				opts.Continue = token
			}
			assert.Equal(t, tt.want, pages)
		})
	}
}

func TestListPaginationIsStableUnderChanges(t *testing.T) {
	store := fixture(t)
	items, token, err := list(store, configMapsGR, "", metav1.ListOptions{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"a/one", "a/two"}, names(t, items))

	// The last object of the page goes away, one appears before the position
	// and one after it: the walk continues after "a/two" regardless.
	require.NoError(t, store.Delete(configMap("a", "two")))
	require.NoError(t, store.Add(configMap("a", "aaa")))
	require.NoError(t, store.Add(configMap("a", "zzz")))

	items, token, err = list(store, configMapsGR, "", metav1.ListOptions{Limit: 10, Continue: token})
	require.NoError(t, err)
	assert.Empty(t, token)
	assert.Equal(t, []string{"a/zzz", "a-b/one", "b/one", "b/two"}, names(t, items))
}

func TestListContinueWithoutLimit(t *testing.T) {
	store := fixture(t)
	_, token, err := list(store, configMapsGR, "", metav1.ListOptions{Limit: 3})
	require.NoError(t, err)
	items, token, err := list(store, configMapsGR, "", metav1.ListOptions{Continue: token})
	require.NoError(t, err)
	assert.Empty(t, token)
	assert.Equal(t, []string{"b/one", "b/two"}, names(t, items))
}

func TestListRejectsBadRequests(t *testing.T) {
	tests := []struct {
		name    string
		opts    metav1.ListOptions
		message string
	}{
		{name: "unsupported field", opts: metav1.ListOptions{FieldSelector: "status.phase=Running"}, message: `field selector "status.phase" is not supported by the cache`},
		{name: "malformed field selector", opts: metav1.ListOptions{FieldSelector: "metadata.name"}, message: "invalid field selector"},
		{name: "malformed label selector", opts: metav1.ListOptions{LabelSelector: "app in (web"}, message: "invalid label selector"},
		{name: "negative limit", opts: metav1.ListOptions{Limit: -1}, message: "limit must not be negative"},
		{name: "token not base64", opts: metav1.ListOptions{Continue: "!!!"}, message: "invalid continue token: not base64url"},
		{name: "token not json", opts: metav1.ListOptions{Continue: base64.RawURLEncoding.EncodeToString([]byte("nope"))}, message: "invalid continue token: malformed"},
		{name: "token of another version", opts: metav1.ListOptions{Continue: base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"n":"x"}`))}, message: "invalid continue token: unknown version 2"},
		{name: "token without position", opts: metav1.ListOptions{Continue: base64.RawURLEncoding.EncodeToString([]byte(`{"v":1}`))}, message: "empty position"},
	}
	store := fixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := list(store, configMapsGR, "", tt.opts)
			require.Error(t, err)
			assert.True(t, apierrors.IsBadRequest(err), "want BadRequest, got %v", err)
			assert.Contains(t, err.Error(), tt.message)
			assert.Contains(t, err.Error(), "configmaps")
		})
	}
}

func TestListReportsObjectsWithoutMetadata(t *testing.T) {
	store := cache.NewIndexer(func(any) (string, error) { return "x", nil }, cache.Indexers{})
	require.NoError(t, store.Add("not an object"))
	_, _, err := list(store, configMapsGR, "", metav1.ListOptions{})
	assert.ErrorContains(t, err, "has no metadata")
	_, err = sortByName([]any{&metav1.ObjectMeta{Name: "x"}})
	assert.ErrorContains(t, err, "not a runtime.Object")
}

func TestIndexes(t *testing.T) {
	store := newStore(t,
		ownedBy(configMap("a", "one", "app", "web"), "u1", "u2"),
		ownedBy(configMap("b", "two", "app", "web"), "u2"),
		configMap("a", "three", "app", "db"),
	)
	tests := []struct {
		index, value string
		want         []string
	}{
		{indexOwner, "u1", []string{"a/one"}},
		{indexOwner, "u2", []string{"a/one", "b/two"}},
		{indexOwner, "u3", []string{}},
		{indexLabel, "app=web", []string{"a/one", "b/two"}},
		{indexLabel, "app=db", []string{"a/three"}},
		{indexNamespace, "a", []string{"a/one", "a/three"}},
	}
	for _, tt := range tests {
		t.Run(tt.index+"/"+tt.value, func(t *testing.T) {
			objs, err := store.ByIndex(tt.index, tt.value)
			require.NoError(t, err)
			sorted, err := sortByName(objs)
			require.NoError(t, err)
			assert.Equal(t, tt.want, names(t, sorted.objects()))
		})
	}
	for _, fn := range []cache.IndexFunc{ownerUIDs, labelPairs} {
		_, err := fn("not an object")
		assert.ErrorContains(t, err, "has no metadata")
	}
}
