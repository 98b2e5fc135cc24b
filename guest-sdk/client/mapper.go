package client

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Mapper turns a kind into the resource the host serves it under.
//
// By default the resource is the lower-case plural of the kind ("Widget" →
// "widgets", "Policy" → "policies", "Ingress" → "ingresses", "Endpoints" →
// "endpoints"). A kind whose resource is named otherwise needs an override.
// The zero Mapper has no overrides and is ready to use.
type Mapper struct {
	overrides map[schema.GroupKind]string
}

// Override makes kind gk map to resource (the plural, lower-case name).
func (m *Mapper) Override(gk schema.GroupKind, resource string) {
	if m.overrides == nil {
		m.overrides = map[schema.GroupKind]string{}
	}
	m.overrides[gk] = resource
}

// ResourceFor returns the resource of gvk.
func (m *Mapper) ResourceFor(gvk schema.GroupVersionKind) schema.GroupVersionResource {
	if r, ok := m.overrides[gvk.GroupKind()]; ok {
		return gvk.GroupVersion().WithResource(r)
	}
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return plural
}
