package host

import (
	"slices"
	"strings"
)

// Permission grants verbs on resources of API groups, in some namespaces. It
// has the shape of an RBAC PolicyRule plus a namespace list.
type Permission struct {
	// APIGroups lists API groups; "" is the core group and "*" any group.
	APIGroups []string `json:"apiGroups"`
	// Resources lists plural resource names, "<resource>/status" for the status
	// subresource, "*/status" and "*". No wildcard grants "secrets".
	Resources []string `json:"resources"`
	// Verbs lists get, list, create, update, patch, delete, or "*".
	Verbs []string `json:"verbs"`
	// Namespaces limits the grant to these namespaces. Defaults to every
	// namespace and cluster-scoped objects when empty.
	Namespaces []string `json:"namespaces,omitempty"`
}

// Permissions is the set of grants of one module; a call is allowed when any
// grant allows it.
type Permissions []Permission

// Allows reports whether verb on group/resource in namespace is granted.
// resource may carry a subresource ("deployments/status"); namespace is "" for
// cluster-scoped objects and for lists across all namespaces.
func (ps Permissions) Allows(verb, group, resource, namespace string) bool {
	return slices.ContainsFunc(ps, func(p Permission) bool { return p.allows(verb, group, resource, namespace) })
}

func (p Permission) allows(verb, group, resource, namespace string) bool {
	base, sub, _ := strings.Cut(resource, "/")
	explicitOnly := group == "" && base == "secrets"
	if !matchName(p.Verbs, verb, false) || !matchName(p.APIGroups, group, explicitOnly) {
		return false
	}
	resourceOK := slices.Contains(p.Resources, resource) ||
		(!explicitOnly && (slices.Contains(p.Resources, "*") || (sub != "" && slices.Contains(p.Resources, "*/"+sub))))
	if !resourceOK {
		return false
	}
	return len(p.Namespaces) == 0 || (namespace != "" && matchName(p.Namespaces, namespace, false))
}

// matchName reports whether list names v, or contains "*" unless explicitOnly.
func matchName(list []string, v string, explicitOnly bool) bool {
	return slices.Contains(list, v) || (!explicitOnly && slices.Contains(list, "*"))
}
