package informers

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// mapping is what the registry needs to know about a resource.
type mapping struct {
	gvr        schema.GroupVersionResource
	gvk        schema.GroupVersionKind
	namespaced bool
}

// resolve maps gvr to its kind and scope. On a miss it resets a resettable
// mapper once and retries, so resources installed after the mapper loaded
// discovery (CRDs) are found.
func resolve(mapper meta.RESTMapper, gvr schema.GroupVersionResource) (mapping, error) {
	if gvr.Version == "" || gvr.Resource == "" {
		return mapping{}, errors.New("resource must name a version and a resource")
	}
	m, err := lookup(mapper, gvr)
	if resettable, ok := mapper.(meta.ResettableRESTMapper); ok && meta.IsNoMatchError(err) {
		resettable.Reset()
		m, err = lookup(mapper, gvr)
	}
	return m, err
}

// lookup asks mapper once.
func lookup(mapper meta.RESTMapper, gvr schema.GroupVersionResource) (mapping, error) {
	gvk, err := mapper.KindFor(gvr)
	if err != nil {
		return mapping{}, fmt.Errorf("resolve kind: %w", err)
	}
	rm, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return mapping{}, fmt.Errorf("resolve scope of %s: %w", gvk, err)
	}
	return mapping{gvr: gvr, gvk: gvk, namespaced: rm.Scope.Name() == meta.RESTScopeNameNamespace}, nil
}
