package deploy

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite deploy/overlays/examples/crds from modules/*/crd.yaml")

// TestExampleCRDsAreTheModules keeps deploy/overlays/examples/crds/<name>.yaml
// byte-identical to modules/<name>/crd.yaml, the one source.
func TestExampleCRDsAreTheModules(t *testing.T) {
	srcs, err := filepath.Glob(filepath.Join(RepoRoot(), "modules", "*", "crd.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, srcs)
	for _, src := range srcs {
		module := filepath.Base(filepath.Dir(src))
		dst := filepath.Join(RepoRoot(), "deploy", "overlays", "examples", "crds", module+".yaml")
		want, err := os.ReadFile(src)
		require.NoError(t, err)
		if *update {
			require.NoError(t, os.WriteFile(dst, want, 0o644))
			continue
		}
		got, err := os.ReadFile(dst)
		require.NoError(t, err, "run `go test . -update` in test/deploy")
		assert.Equal(t, string(want), string(got), "%s differs from %s: run `go test . -update` in test/deploy", dst, src)
	}
}

// manifest is the part of a module manifest (modules/<name>/module.yaml) that
// RBAC must cover.
type manifest struct {
	Name        string              `json:"name"`
	Permissions []rbacv1.PolicyRule `json:"permissions"`
}

// grant is one (group, resource, verb) triple.
type grant struct{ group, resource, verb string }

func grants(rules []rbacv1.PolicyRule) map[grant]bool {
	g := map[grant]bool{}
	for _, r := range rules {
		for _, group := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					g[grant{group, res, v}] = true
				}
			}
		}
	}
	return g
}

// TestExampleModulesRoleMatchesManifests proves that wre-example-modules
// grants what the example modules' manifests ask for, and nothing more
// (apart from the documented apps/finalizers).
func TestExampleModulesRoleMatchesManifests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(RepoRoot(), "modules", "*", "module.yaml"))
	require.NoError(t, err)
	require.Len(t, files, len(ExampleModules))
	need := map[grant]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var m manifest
		require.NoError(t, yaml.Unmarshal(data, &m), f)
		assert.True(t, slices.Contains(ExampleModules, m.Name), "%s: module %q is not in ExampleModules", f, m.Name)
		for g := range grants(m.Permissions) {
			need[g] = true
		}
	}
	var role rbacv1.ClusterRole
	get(t, render(t, "deploy/overlays/examples"), "ClusterRole", "wre-example-modules", &role)
	have := grants(role.Rules)
	for g := range need {
		assert.True(t, have[g], "a manifest needs %+v, wre-example-modules lacks it", g)
	}
	extra := map[grant]bool{{"demo.wre.dev", "apps/finalizers", "update"}: true}
	for g := range have {
		assert.True(t, need[g] || extra[g], "wre-example-modules grants %+v, which no manifest asks for", g)
	}
}
