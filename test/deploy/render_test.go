package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

const engineNamespace = "wre-system"

func render(t *testing.T, dir string, components ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(dir, components...)
	require.NoError(t, err)
	require.NotEmpty(t, objs)
	return objs
}

// get finds kind/name in objs and converts it into out.
func get(t *testing.T, objs []*unstructured.Unstructured, kind, name string, out any) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out))
			return
		}
	}
	t.Fatalf("no %s %s in the rendered manifests", kind, name)
}

func kinds(objs []*unstructured.Unstructured) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.GetKind()+"/"+o.GetName())
	}
	return ks
}

func TestRenderAll(t *testing.T) {
	for _, dir := range Kustomizations {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			for _, o := range objs {
				if o.GetNamespace() != "" {
					assert.Equal(t, engineNamespace, o.GetNamespace(), "%s/%s", o.GetKind(), o.GetName())
				}
				assert.NotEqual(t, "monitoring.coreos.com", o.GroupVersionKind().Group,
					"%s/%s: Prometheus-operator objects belong in deploy/components/prometheus-operator", o.GetKind(), o.GetName())
			}
		})
	}
	t.Run("deploy installs the WreModule CRD", func(t *testing.T) {
		// kubectl get wremodules (deploy/base/wremodule-crd.yaml): every
		// kustomization that installs the engine installs its status resource.
		for _, dir := range Kustomizations {
			if slices.Contains(kinds(render(t, dir)), "Deployment/wre") {
				assert.Contains(t, kinds(render(t, dir)), "CustomResourceDefinition/wremodules.wre.dev", dir)
			}
		}
	})
	for _, c := range []string{"deploy/components/cert-manager", "deploy/components/network-policy"} {
		t.Run("base with "+c, func(t *testing.T) {
			objs := render(t, "deploy/base", c)
			assert.Contains(t, kinds(objs), "Deployment/wre")
		})
	}
	t.Run("base with prometheus-operator component", func(t *testing.T) {
		objs := render(t, "deploy/base", "deploy/components/prometheus-operator")
		ks := kinds(objs)
		assert.Contains(t, ks, "ServiceMonitor/wre")
		assert.Contains(t, ks, "PrometheusRule/wre")
		assert.Contains(t, ks, "Deployment/wre")
	})
}

func TestEngineDeployment(t *testing.T) {
	objs := render(t, "deploy")
	var d appsv1.Deployment
	get(t, objs, "Deployment", "wre", &d)

	assert.EqualValues(t, 2, *d.Spec.Replicas)
	podLabels := labels.Set(d.Spec.Template.Labels)
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	c := d.Spec.Template.Spec.Containers[0]
	assert.Contains(t, c.Args, "--leader-elect")
	assert.Contains(t, c.Args, "--metrics-bind-address=:8443")
	assert.Contains(t, c.Args, "--metrics-secure")
	assert.Contains(t, c.Args, "--health-probe-bind-address=:8081")
	assert.Contains(t, c.Args, "--module-namespace=$(POD_NAMESPACE)")
	assert.Equal(t, "ghcr.io/wre-dev/wre:latest", c.Image)
	assert.Equal(t, "wre", d.Spec.Template.Spec.ServiceAccountName)

	t.Run("the Role allows exactly the leader-election Lease", func(t *testing.T) {
		id := flagValue(c.Args, "--leader-election-id")
		require.NotEmpty(t, id, "--leader-election-id is explicit, so the Role can name it")
		var role rbacv1.Role
		get(t, objs, "Role", "wre", &role)
		var named []string
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "leases") && slices.Contains(r.Verbs, "update") {
				named = append(named, r.ResourceNames...)
			}
		}
		assert.Equal(t, []string{id}, named)
	})

	t.Run("termination grace outlasts graceful shutdown", func(t *testing.T) {
		timeout, err := time.ParseDuration(flagValue(c.Args, "--graceful-shutdown-timeout"))
		require.NoError(t, err)
		grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
		assert.Greater(t, grace, timeout)
	})

	t.Run("probes", func(t *testing.T) {
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			require.NotNil(t, p, name)
			require.NotNil(t, p.HTTPGet, name)
			assert.Equal(t, "health", p.HTTPGet.Port.String(), name)
		}
		assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		assert.Equal(t, map[string]int32{"metrics": 8443, "health": 8081}, ports)
	})

	t.Run("security context", func(t *testing.T) {
		pod := d.Spec.Template.Spec.SecurityContext
		require.NotNil(t, pod)
		assert.True(t, *pod.RunAsNonRoot)
		assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SeccompProfile.Type)
		sc := c.SecurityContext
		require.NotNil(t, sc)
		assert.True(t, *sc.RunAsNonRoot)
		assert.True(t, *sc.ReadOnlyRootFilesystem)
		assert.False(t, *sc.AllowPrivilegeEscalation)
		assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
		assert.Empty(t, sc.Capabilities.Add)
		assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type)
		assert.False(t, d.Spec.Template.Spec.HostNetwork)
	})

	t.Run("resources", func(t *testing.T) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			assert.Contains(t, c.Resources.Requests, r)
			assert.Contains(t, c.Resources.Limits, r)
		}
	})

	t.Run("compilation cache on an emptyDir", func(t *testing.T) {
		dir := flagValue(c.Args, "--cache-dir")
		require.NotEmpty(t, dir, "--cache-dir")
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
		require.GreaterOrEqual(t, i, 0, "nothing mounted at %s", dir)
		v := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name })
		require.GreaterOrEqual(t, v, 0)
		assert.NotNil(t, d.Spec.Template.Spec.Volumes[v].EmptyDir)
	})

	t.Run("topology spread", func(t *testing.T) {
		keys := map[string]bool{}
		for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
			sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
			require.NoError(t, err)
			assert.True(t, sel.Matches(podLabels), "%s selects the engine pods", tsc.TopologyKey)
			keys[tsc.TopologyKey] = true
		}
		assert.True(t, keys["kubernetes.io/hostname"])
		assert.True(t, keys["topology.kubernetes.io/zone"])
	})

	t.Run("pod disruption budget", func(t *testing.T) {
		var pdb policyv1.PodDisruptionBudget
		get(t, objs, "PodDisruptionBudget", "wre", &pdb)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		require.NoError(t, err)
		assert.True(t, sel.Matches(podLabels))
		assert.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue())
	})

	t.Run("metrics service", func(t *testing.T) {
		var svc corev1.Service
		get(t, objs, "Service", "wre-metrics", &svc)
		assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels))
		require.Len(t, svc.Spec.Ports, 1)
		assert.EqualValues(t, 8443, svc.Spec.Ports[0].Port)
		assert.Equal(t, "metrics", svc.Spec.Ports[0].TargetPort.String())
	})

	t.Run("namespace enforces the restricted pod security standard", func(t *testing.T) {
		var ns corev1.Namespace
		get(t, objs, "Namespace", engineNamespace, &ns)
		assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"])
	})
}

func TestDevOverlay(t *testing.T) {
	var d appsv1.Deployment
	get(t, render(t, "deploy/overlays/dev"), "Deployment", "wre", &d)
	assert.EqualValues(t, 1, *d.Spec.Replicas)
	args := d.Spec.Template.Spec.Containers[0].Args
	assert.Contains(t, args, "-v=2")
	assert.Equal(t, "text", flagValue(args, "--log-format"))
	assert.Contains(t, args, "--leader-elect")
}

func TestExamplesOverlay(t *testing.T) {
	objs := render(t, "deploy/overlays/examples")
	ks := kinds(objs)
	assert.Contains(t, ks, "CustomResourceDefinition/widgets.demo.wre.dev")
	assert.Contains(t, ks, "CustomResourceDefinition/apps.demo.wre.dev")
	assert.Contains(t, ks, "Deployment/wre")

	var role rbacv1.ClusterRole
	get(t, objs, "ClusterRole", "wre-example-modules", &role)
	var agg rbacv1.ClusterRole
	get(t, objs, "ClusterRole", "wre-modules", &agg)
	require.NotNil(t, agg.AggregationRule)
	matched := false
	for _, s := range agg.AggregationRule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&s)
		require.NoError(t, err)
		matched = matched || sel.Matches(labels.Set(role.Labels))
	}
	assert.True(t, matched, "wre-example-modules is aggregated into wre-modules")

	modules := map[string]bool{}
	for _, o := range objs {
		if m := o.GetLabels()["wre.dev/module"]; o.GetKind() == "ConfigMap" && m != "" {
			modules[m] = true
			assert.Equal(t, engineNamespace, o.GetNamespace())
			if o.GetAnnotations()[PlaceholderAnnotation] != "" {
				t.Logf("module %s: placeholder ConfigMap (run deploy/overlays/examples/package-modules.sh for the real one)", m)
			}
		}
	}
	for _, m := range ExampleModules {
		assert.True(t, modules[m], "module ConfigMap of %s", m)
	}
}

// flagValue returns the value of the last --name=value in args.
func flagValue(args []string, name string) string {
	var v string
	for _, a := range args {
		if val, ok := strings.CutPrefix(a, name+"="); ok {
			v = val
		}
	}
	return v
}

var flagName = regexp.MustCompile(`^(--?[a-z0-9-]+)`)

// TestDeploymentFlagsExist runs `wre run --help` of WRE_BINARY and checks
// that it knows every flag that a Deployment of deploy/ passes, so a renamed
// flag breaks this test rather than a rollout.
func TestDeploymentFlagsExist(t *testing.T) {
	path := os.Getenv("WRE_BINARY")
	if path == "" {
		t.Fatal("WRE_BINARY is not set: run `make test`, or `make image-binary` and set WRE_BINARY=$PWD/bin/wre")
	}
	out, _ := exec.CommandContext(t.Context(), path, "run", "--help").CombinedOutput()
	help := string(out)
	require.Regexp(t, `(^|\s)--?leader-elect\b`, help, "wre run --help:\n%s", help)
	var unknown []string
	for _, dir := range Kustomizations {
		var d appsv1.Deployment
		get(t, render(t, dir), "Deployment", "wre", &d)
		for _, a := range d.Spec.Template.Spec.Containers[0].Args[1:] {
			f := flagName.FindString(a)
			require.NotEmpty(t, f, "argument %q of %s", a, dir)
			name := strings.TrimLeft(f, "-")
			if !regexp.MustCompile(`(^|\s)--?` + regexp.QuoteMeta(name) + `\b`).MatchString(help) {
				unknown = append(unknown, dir+": "+f)
			}
		}
	}
	assert.Empty(t, unknown, "flags the Deployment passes but `wre run` does not know")
}
