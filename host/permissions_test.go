package host

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPermissionsAllows(t *testing.T) {
	perms := Permissions{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list"}, Namespaces: []string{"a"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps", "configmaps/status"}, Verbs: []string{"*"}},
		{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"watch"}},
		{APIGroups: []string{"example.com"}, Resources: []string{"*/status"}, Verbs: []string{"patch"}},
	}
	cases := []struct {
		verb, group, resource, ns string
		want                      bool
	}{
		{"get", "apps", "deployments", "a", true},
		{"get", "apps", "deployments", "b", false},
		{"list", "apps", "deployments", "", false}, // all namespaces is not "a"
		{"create", "apps", "deployments", "a", false},
		{"get", "", "deployments", "a", false},
		{"delete", "", "configmaps", "x", true},
		{"delete", "", "configmaps", "", true},
		{"update", "", "configmaps/status", "x", true},
		{"update", "", "services/status", "x", false},
		{"watch", "batch", "jobs", "x", true},
		{"watch", "", "secrets", "x", false}, // wildcards never grant secrets
		{"patch", "example.com", "widgets/status", "x", true},
		{"patch", "example.com", "widgets", "x", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, perms.Allows(c.verb, c.group, c.resource, c.ns), "%s %q %s in %q", c.verb, c.group, c.resource, c.ns)
	}
}

func TestSecretsNeedExplicitGrant(t *testing.T) {
	wild := Permissions{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}
	assert.False(t, wild.Allows("get", "", "secrets", "ns"))
	assert.True(t, wild.Allows("get", "", "configmaps", "ns"))
	assert.True(t, wild.Allows("get", "other.io", "secrets", "ns"), "only core secrets are special")

	wildGroup := Permissions{{APIGroups: []string{"*"}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}
	assert.False(t, wildGroup.Allows("get", "", "secrets", "ns"), "the core group must be named too")

	explicit := Permissions{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}
	assert.True(t, explicit.Allows("get", "", "secrets", "ns"))
	assert.False(t, explicit.Allows("create", "", "secrets", "ns"))

	starStatus := Permissions{{APIGroups: []string{""}, Resources: []string{"*/status"}, Verbs: []string{"*"}}}
	assert.False(t, starStatus.Allows("update", "", "secrets/status", "ns"))
	assert.False(t, Permissions(nil).Allows("get", "", "configmaps", ""))
}
