package informers

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/tools/cache"
)

// Field selector fields the cache can answer.
const (
	fieldName      = "metadata.name"
	fieldNamespace = "metadata.namespace"
)

// query is a parsed, validated list request.
type query struct {
	namespace string
	labels    labels.Selector
	fields    fields.Selector
	limit     int64
	after     *position
}

// position is a place in namespace/name order.
type position struct {
	Namespace string `json:"ns,omitempty"`
	Name      string `json:"n"`
}

// continueToken is the opaque continue token, base64url-encoded JSON.
type continueToken struct {
	Version int `json:"v"`
	position
}

// tokenVersion is the version of continueToken's encoding.
const tokenVersion = 1

// list serves Informer.List from store.
func list(store cache.Indexer, gr schema.GroupResource, namespace string, opts metav1.ListOptions) ([]runtime.Object, string, error) {
	q, err := parseQuery(gr, namespace, opts)
	if err != nil {
		return nil, "", err
	}
	candidates, err := q.candidates(store)
	if err != nil {
		return nil, "", fmt.Errorf("list %s from cache: %w", gr, err)
	}
	matched := make([]any, 0, len(candidates))
	for _, obj := range candidates {
		ok, err := q.matches(obj)
		if err != nil {
			return nil, "", fmt.Errorf("list %s from cache: %w", gr, err)
		}
		if ok {
			matched = append(matched, obj)
		}
	}
	sorted, err := sortByName(matched)
	if err != nil {
		return nil, "", fmt.Errorf("list %s from cache: %w", gr, err)
	}
	if q.limit == 0 || int64(len(sorted)) <= q.limit {
		return sorted.objects(), "", nil
	}
	page := sorted[:q.limit]
	last := page[len(page)-1]
	return page.objects(), encodeToken(last.position), nil
}

// parseQuery validates opts; every problem is an apierrors BadRequest.
func parseQuery(gr schema.GroupResource, namespace string, opts metav1.ListOptions) (query, error) {
	q := query{namespace: namespace, limit: opts.Limit, labels: labels.Everything(), fields: fields.Everything()}
	var err error
	if opts.LabelSelector != "" {
		if q.labels, err = labels.Parse(opts.LabelSelector); err != nil {
			return q, apierrors.NewBadRequest(fmt.Sprintf("list %s: invalid label selector %q: %v", gr, opts.LabelSelector, err))
		}
	}
	if opts.FieldSelector != "" {
		if q.fields, err = fields.ParseSelector(opts.FieldSelector); err != nil {
			return q, apierrors.NewBadRequest(fmt.Sprintf("list %s: invalid field selector %q: %v", gr, opts.FieldSelector, err))
		}
	}
	for _, req := range q.fields.Requirements() {
		switch req.Field {
		case fieldName:
		case fieldNamespace:
			if q.namespace == "" && req.Operator != selection.NotEquals {
				q.namespace = req.Value // narrows the scan; matching still checks it
			}
		default:
			return q, apierrors.NewBadRequest(fmt.Sprintf(
				"list %s: field selector %q is not supported by the cache: only %s and %s can be selected",
				gr, req.Field, fieldName, fieldNamespace))
		}
	}
	if q.limit < 0 {
		return q, apierrors.NewBadRequest(fmt.Sprintf("list %s: limit must not be negative, got %d", gr, q.limit))
	}
	if opts.Continue != "" {
		pos, err := decodeToken(opts.Continue)
		if err != nil {
			return q, apierrors.NewBadRequest(fmt.Sprintf("list %s: invalid continue token: %v", gr, err))
		}
		q.after = &pos
	}
	return q, nil
}

// candidates returns a superset of the matching objects, using the label index
// for the first equality requirement of the label selector, else the namespace
// index, else the whole store.
func (q query) candidates(store cache.Indexer) ([]any, error) {
	reqs, _ := q.labels.Requirements()
	for _, req := range reqs {
		switch req.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
		default:
			continue
		}
		// An object has one value per key, so the per-value sets are disjoint.
		var out []any
		for _, v := range req.Values().UnsortedList() {
			objs, err := store.ByIndex(indexLabel, labelKey(req.Key(), v))
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
		return out, nil
	}
	if q.namespace != "" {
		return store.ByIndex(indexNamespace, q.namespace)
	}
	return store.List(), nil
}

// matches reports whether obj is selected by q and lies after its position.
func (q query) matches(obj any) (bool, error) {
	m, err := objectMeta(obj)
	if err != nil {
		return false, err
	}
	if q.namespace != "" && m.GetNamespace() != q.namespace {
		return false, nil
	}
	if q.after != nil && comparePosition(position{m.GetNamespace(), m.GetName()}, *q.after) <= 0 {
		return false, nil
	}
	return q.labels.Matches(labels.Set(m.GetLabels())) &&
		q.fields.Matches(fields.Set{fieldName: m.GetName(), fieldNamespace: m.GetNamespace()}), nil
}

// item is a cached object with its sort key.
type item struct {
	position
	obj runtime.Object
}

// items are cached objects in namespace/name order.
type items []item

// objects returns the objects of s.
func (s items) objects() []runtime.Object {
	out := make([]runtime.Object, len(s))
	for i, it := range s {
		out[i] = it.obj
	}
	return out
}

// sortByName orders objs by namespace, then name.
func sortByName(objs []any) (items, error) {
	out := make(items, 0, len(objs))
	for _, obj := range objs {
		m, err := objectMeta(obj)
		if err != nil {
			return nil, err
		}
		ro, ok := obj.(runtime.Object)
		if !ok {
			return nil, fmt.Errorf("cached object %T is not a runtime.Object", obj)
		}
		out = append(out, item{position: position{m.GetNamespace(), m.GetName()}, obj: ro})
	}
	slices.SortFunc(out, func(a, b item) int { return comparePosition(a.position, b.position) })
	return out, nil
}

// comparePosition orders by namespace, then name. Comparing the fields, not
// "namespace/name" strings, keeps "a/x" before "a-b/x".
func comparePosition(a, b position) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// encodeToken returns the continue token that resumes after pos.
func encodeToken(pos position) string {
	raw, _ := json.Marshal(continueToken{Version: tokenVersion, position: pos}) // cannot fail: strings only
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeToken parses a token made by encodeToken.
func decodeToken(token string) (position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return position{}, fmt.Errorf("not base64url: %w", err)
	}
	var t continueToken
	if err := json.Unmarshal(raw, &t); err != nil {
		return position{}, fmt.Errorf("malformed: %w", err)
	}
	if t.Version != tokenVersion || t.Name == "" {
		return position{}, fmt.Errorf("unknown version %d or empty position", t.Version)
	}
	return t.position, nil
}
