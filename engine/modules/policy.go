package modules

import (
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/wre-dev/wre/host"
)

// PolicyKind is the kind of a policy file.
const PolicyKind = "Policy"

// Policy caps what any module of the engine may be granted: a module whose
// manifest asks for a permission the policy does not cover is refused.
type Policy struct {
	// APIVersion is always "wre.dev/v1alpha1".
	APIVersion string `json:"apiVersion"`
	// Kind is always "Policy".
	Kind string `json:"kind"`
	// Permissions is the most a module may hold. A module's grant must be
	// covered verb by verb, group by group, resource by resource and (when it
	// lists namespaces) namespace by namespace; a wildcard is covered only by
	// a wildcard.
	Permissions host.Permissions `json:"permissions"`
	// AllowServiceAccounts lets modules name a serviceAccountName for the
	// engine to impersonate. Defaults to false.
	AllowServiceAccounts bool `json:"allowServiceAccounts,omitempty"`
	// Limits are the ceilings of the limits a module may ask for (the
	// policy file's limits block). A ceiling set by a `wre run` flag
	// overrides the file's (Limits.Over); a ceiling neither sets is
	// DefaultLimits'. Every ceiling is at most its absolute bound.
	Limits Limits `json:"limits"`
}

// AllowAll is the policy of an engine started without one: it caps nothing
// (Secrets are still only granted by name).
var AllowAll = &Policy{
	APIVersion: APIVersion, Kind: PolicyKind,
	Permissions:          host.Permissions{{APIGroups: []string{"*", ""}, Resources: []string{"*", "secrets"}, Verbs: []string{"*"}}},
	AllowServiceAccounts: true,
}

// LoadPolicy reads a policy file (YAML, strict). It refuses an unknown field
// and a ceiling of the limits block that does not parse, is negative or is
// above its absolute bound, naming the field.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	var p Policy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	if p.APIVersion != APIVersion || p.Kind != PolicyKind {
		return nil, fmt.Errorf("load policy %s: apiVersion/kind is %s/%s, want %s/%s", path, p.APIVersion, p.Kind, APIVersion, PolicyKind)
	}
	if err := p.Limits.validate(func(lt limit) string { return "limits." + lt.key }); err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	return &p, nil
}

// Check returns an error naming every permission of m the policy does not
// cover and every limit m asks for above its ceiling, or nil.
func (p *Policy) Check(m *Manifest) error {
	var errs []error
	for i, g := range m.Permissions {
		namespaces := g.Namespaces
		if len(namespaces) == 0 {
			namespaces = []string{""}
		}
		for _, group := range g.APIGroups {
			for _, res := range g.Resources {
				for _, verb := range g.Verbs {
					for _, ns := range namespaces {
						if !p.Permissions.Allows(verb, group, res, ns) {
							errs = append(errs, fmt.Errorf("permissions[%d]: %s", i, describe(verb, group, res, ns)))
						}
					}
				}
			}
		}
	}
	if m.ServiceAccountName != "" && !p.AllowServiceAccounts {
		errs = append(errs, errors.New("serviceAccountName: the policy does not let modules name a ServiceAccount"))
	}
	if err := p.Limits.Check(m); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("module %q exceeds the engine policy: %w", m.Name, err)
	}
	return nil
}

func describe(verb, group, res, ns string) string {
	if group == "" {
		group = "core"
	}
	where := "in every namespace"
	if ns != "" {
		where = "in namespace " + ns
	}
	return fmt.Sprintf("%s %s (group %s) %s is not allowed", verb, res, group, where)
}
