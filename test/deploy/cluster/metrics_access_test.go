package cluster

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/deploy"
)

// serviceAccountToken creates the ServiceAccount ns/name if needed and
// returns a bound token of it (TokenRequest API), as a pod gets.
func serviceAccountToken(t *testing.T, ns, name string) string {
	t.Helper()
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	_, err := admin.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, ignoreExists(err))
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

// prometheusToken returns a token of the ServiceAccount that the
// prometheus-operator component allows to read /metrics, with that
// component's ClusterRoleBinding applied (removed when the test ends): what
// the in-cluster Prometheus scrapes with. The ClusterRole it binds,
// wre-metrics-reader, comes with deploy/base (applyRBAC).
func prometheusToken(t *testing.T) string {
	t.Helper()
	objs, err := deploy.Render("deploy/base", "deploy/components/prometheus-operator")
	require.NoError(t, err)
	var binding *rbacv1.ClusterRoleBinding
	a := newApplier(t, cp.Config())
	for _, o := range objs {
		if o.GetKind() == "ClusterRoleBinding" && o.GetName() == "wre-metrics-reader-prometheus" {
			binding = &rbacv1.ClusterRoleBinding{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, binding))
			require.NoError(t, a.apply(t.Context(), o, false))
		}
	}
	require.NotNil(t, binding, "the component binds wre-metrics-reader")
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	t.Cleanup(func() {
		err := admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete ClusterRoleBinding %s: %v", binding.Name, err)
		}
	})
	sa := binding.Subjects[0]
	_, err = admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sa.Namespace}}, metav1.CreateOptions{})
	require.NoError(t, ignoreExists(err))
	return serviceAccountToken(t, sa.Namespace, sa.Name)
}

// checkMetricsAccess is the deployed engine (--metrics-secure) facing
// callers: no token or a bad one gets 401, a ServiceAccount without
// wre-metrics-reader 403, and the same ServiceAccount once bound to it 200
// with the metrics; /modules likewise. No denied answer carries any of it.
func checkMetricsAccess(t *testing.T, e *engine) {
	require.Equal(t, "https", e.scheme, "deploy/ runs --metrics-secure")
	ns := controlplane.Namespace(t, cp)
	token := serviceAccountToken(t, ns, "dashboards")
	paths := []string{"/metrics", "/modules"}
	denied := func(t *testing.T, want int, c *http.Client) {
		for _, p := range paths {
			code, body := e.get(t, c, p)
			assert.Equal(t, want, code, "%s: %s", p, body)
			assert.NotContains(t, body, "controller_runtime", p)
			assert.NotContains(t, body, "status-sync", p)
		}
	}
	t.Run("no token", func(t *testing.T) { denied(t, http.StatusUnauthorized, tokenClient(t, "")) })
	t.Run("malformed token", func(t *testing.T) { denied(t, http.StatusUnauthorized, tokenClient(t, "not-a-token")) })
	t.Run("ServiceAccount without wre-metrics-reader", func(t *testing.T) { denied(t, http.StatusForbidden, tokenClient(t, token)) })

	admin := kubernetes.NewForConfigOrDie(cp.Config())
	name := "wre-metrics-reader-" + ns
	_, err := admin.RbacV1().ClusterRoleBindings().Create(t.Context(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "wre-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "dashboards"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})

	t.Run("the same ServiceAccount bound to wre-metrics-reader", func(t *testing.T) {
		c := tokenClient(t, token)
		// The engine caches the denial briefly (10 s).
		eventually(t, 60*time.Second, func() error {
			if code, body := e.get(t, c, "/metrics"); code != http.StatusOK {
				return &httpError{code, body}
			}
			return nil
		})
		code, body := e.get(t, c, "/metrics")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, "controller_runtime_reconcile_total{")
		code, body = e.get(t, c, "/modules")
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `"name": "status-sync"`)
	})
}

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return http.StatusText(e.code) + ": " + e.body }
