package host

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CacheReader reads one cached resource. Objects are typed k8s.io/api structs
// for built-in types or *unstructured.Unstructured; the host never modifies them.
// An engine informer satisfies it.
type CacheReader interface {
	// Get returns the object or an apierrors NotFound error.
	Get(namespace, name string) (runtime.Object, error)
	// List returns the objects of namespace ("" = all) matching opts, and a
	// continue token when opts.Limit cut the list.
	List(namespace string, opts metav1.ListOptions) ([]runtime.Object, string, error)
}

// Cache tells which resources are cached.
type Cache interface {
	// Reader returns the reader of gvr, or false when gvr is not cached.
	Reader(gvr schema.GroupVersionResource) (CacheReader, bool)
}

// CacheFunc adapts a lookup function to Cache, e.g. over an informer registry.
type CacheFunc func(gvr schema.GroupVersionResource) (CacheReader, bool)

// Reader calls f(gvr).
func (f CacheFunc) Reader(gvr schema.GroupVersionResource) (CacheReader, bool) { return f(gvr) }

var _ Cache = CacheFunc(nil)
