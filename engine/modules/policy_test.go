package modules_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host"
)

func TestPolicyCheck(t *testing.T) {
	policy := &modules.Policy{Permissions: host.Permissions{
		{APIGroups: []string{"demo.wre.dev"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch", "update"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}, Namespaces: []string{"a", "b"}},
	}}
	grant := func(p ...host.Permission) *modules.Manifest { return &modules.Manifest{Name: "m", Permissions: p} }
	cases := []struct {
		name string
		m    *modules.Manifest
		want []string // empty: allowed
	}{
		{"covered", grant(host.Permission{APIGroups: []string{"demo.wre.dev"}, Resources: []string{"widgets", "widgets/status"}, Verbs: []string{"get", "update"}}), nil},
		{"namespaced covered", grant(host.Permission{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"delete"}, Namespaces: []string{"b"}}), nil},
		{"verb beyond", grant(host.Permission{APIGroups: []string{"demo.wre.dev"}, Resources: []string{"widgets"}, Verbs: []string{"delete"}}),
			[]string{"permissions[0]: delete widgets (group demo.wre.dev) in every namespace is not allowed"}},
		{"namespace beyond", grant(host.Permission{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}, Namespaces: []string{"a", "c"}}),
			[]string{"get configmaps (group core) in namespace c is not allowed"}},
		{"cluster-wide beyond", grant(host.Permission{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}),
			[]string{"get configmaps (group core) in every namespace"}},
		{"wildcard group", grant(host.Permission{APIGroups: []string{"*"}, Resources: []string{"widgets"}, Verbs: []string{"get"}}),
			[]string{"get widgets (group *)"}},
		{"service account", &modules.Manifest{Name: "m", ServiceAccountName: "sa"}, []string{"serviceAccountName: the policy does not let"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := policy.Check(c.m)
			if len(c.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), `module "m" exceeds the engine policy`)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestAllowAllCoversEverything(t *testing.T) {
	m := &modules.Manifest{Name: "m", ServiceAccountName: "sa", Permissions: host.Permissions{
		{APIGroups: []string{"*", ""}, Resources: []string{"*", "secrets", "*/status"}, Verbs: []string{"*", "get"}, Namespaces: []string{"x"}},
	}}
	assert.NoError(t, modules.AllowAll.Check(m))
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	p, err := modules.LoadPolicy(write("ok.yaml", `apiVersion: wre.dev/v1alpha1
kind: Policy
permissions:
  - {apiGroups: [""], resources: [configmaps], verbs: [get]}
`))
	require.NoError(t, err)
	assert.True(t, p.Permissions.Allows("get", "", "configmaps", "x"))
	assert.False(t, p.AllowServiceAccounts)

	_, err = modules.LoadPolicy(write("kind.yaml", "apiVersion: wre.dev/v1alpha1\nkind: Module\n"))
	assert.ErrorContains(t, err, "want wre.dev/v1alpha1/Policy")
	_, err = modules.LoadPolicy(write("unknown.yaml", "apiVersion: wre.dev/v1alpha1\nkind: Policy\nallow: all\n"))
	assert.ErrorContains(t, err, `unknown field "allow"`)
	_, err = modules.LoadPolicy(filepath.Join(dir, "missing.yaml"))
	assert.ErrorContains(t, err, "load policy")
}
