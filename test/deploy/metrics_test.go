package deploy

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// TestMetricsRBAC checks the RBAC of the secured metrics endpoint: the engine
// may ask TokenReviews and SubjectAccessReviews, and wre-metrics-reader
// grants get on /metrics and /modules, and nothing else.
func TestMetricsRBAC(t *testing.T) {
	objs := render(t, "deploy")
	var reader rbacv1.ClusterRole
	get(t, objs, "ClusterRole", "wre-metrics-reader", &reader)
	assert.Equal(t, []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics", "/modules"}, Verbs: []string{"get"}}}, reader.Rules)

	var auth rbacv1.ClusterRole
	get(t, objs, "ClusterRole", "wre-metrics-auth", &auth)
	assert.ElementsMatch(t, []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}, auth.Rules)
	var binding rbacv1.ClusterRoleBinding
	get(t, objs, "ClusterRoleBinding", "wre-metrics-auth", &binding)
	assert.Equal(t, "wre-metrics-auth", binding.RoleRef.Name)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "wre", Namespace: engineNamespace}}, binding.Subjects)
	for _, o := range objs {
		if o.GetKind() == "ClusterRoleBinding" || o.GetKind() == "RoleBinding" {
			var b rbacv1.ClusterRoleBinding
			get(t, []*unstructured.Unstructured{o}, o.GetKind(), o.GetName(), &b)
			assert.NotEqual(t, "wre-metrics-reader", b.RoleRef.Name, "the base binds the reader role to nobody: %s", o.GetName())
		}
	}
}

func TestPrometheusOperatorScrapesSecurely(t *testing.T) {
	objs := render(t, "deploy/base", "deploy/components/prometheus-operator")
	sm := find(t, objs, "ServiceMonitor", "wre")
	eps, _, err := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	require.NoError(t, err)
	require.Len(t, eps, 1)
	ep := eps[0].(map[string]any)
	assert.Equal(t, "https", ep["scheme"])
	assert.Equal(t, "/var/run/secrets/kubernetes.io/serviceaccount/token", ep["bearerTokenFile"], "Prometheus's own ServiceAccount token")
	assert.Equal(t, true, ep["tlsConfig"].(map[string]any)["insecureSkipVerify"], "the engine's certificate is self-signed by default")

	var b rbacv1.ClusterRoleBinding
	get(t, objs, "ClusterRoleBinding", "wre-metrics-reader-prometheus", &b)
	assert.Equal(t, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wre-metrics-reader"}, b.RoleRef)
	require.Len(t, b.Subjects, 1)
	assert.Equal(t, "ServiceAccount", b.Subjects[0].Kind)
	find(t, objs, "ClusterRole", "wre-metrics-reader")
}

func TestCertManagerComponent(t *testing.T) {
	objs := render(t, "deploy/base", "deploy/components/cert-manager")
	var d appsv1.Deployment
	get(t, objs, "Deployment", "wre", &d)
	c := d.Spec.Template.Spec.Containers[0]
	dir := flagValue(c.Args, "--metrics-cert-dir")
	require.NotEmpty(t, dir, "--metrics-cert-dir")
	assert.Contains(t, c.Args, "--metrics-secure")
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
	require.GreaterOrEqual(t, i, 0, "nothing mounted at %s", dir)
	assert.True(t, c.VolumeMounts[i].ReadOnly)
	v := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name })
	require.GreaterOrEqual(t, v, 0)
	secret := d.Spec.Template.Spec.Volumes[v].Secret
	require.NotNil(t, secret, "the certificate comes from a Secret")
	assert.Len(t, d.Spec.Template.Spec.Volumes, 3, "cache, tmp and the certificate")

	cert := find(t, objs, "Certificate", "wre-metrics-cert")
	name, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	assert.Equal(t, secret.SecretName, name, "the Deployment mounts the Secret cert-manager writes")
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	assert.Contains(t, dns, "wre-metrics."+engineNamespace+".svc", "the name scrapers reach the Service by")
	issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	find(t, objs, "Issuer", issuer)
}

func TestNetworkPolicyComponent(t *testing.T) {
	objs := render(t, "deploy/base", "deploy/components/network-policy")
	var np networkingv1.NetworkPolicy
	strict(t, find(t, objs, "NetworkPolicy", "wre-metrics"), &np)
	var d appsv1.Deployment
	get(t, objs, "Deployment", "wre", &d)
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)), "selects the engine pods")
	assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, np.Spec.PolicyTypes, "outbound (the API server) is not restricted")

	ports := map[string]bool{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = true
	}
	from := map[string][]networkingv1.NetworkPolicyPeer{}
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			assert.True(t, ports[p.Port.String()], "port %s is a port of the engine container", p.Port)
			from[p.Port.String()] = r.From
		}
	}
	monitoring := labels.Set{"kubernetes.io/metadata.name": "monitoring"}
	require.Len(t, from["metrics"], 1)
	peer := from["metrics"][0]
	require.NotNil(t, peer.NamespaceSelector)
	assert.Nil(t, peer.PodSelector)
	nsSel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
	require.NoError(t, err)
	assert.True(t, nsSel.Matches(monitoring))
	assert.False(t, nsSel.Matches(labels.Set{"kubernetes.io/metadata.name": "default"}))
	assert.Contains(t, from, "health", "the kubelet's probes")
	assert.Empty(t, from["health"])
}
