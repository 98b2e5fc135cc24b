package manager_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/secure"
	"github.com/wre-dev/wre/test/controlplane"
)

// saToken returns a bound token of a new ServiceAccount ns/name (TokenRequest
// API), as a pod's projected token would be.
func saToken(t *testing.T, admin kubernetes.Interface, ns, name string) string {
	t.Helper()
	_, err := admin.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

// secureGet GETs url with token (none if empty), trusting the engine's
// self-signed certificate as a scraper configured with insecure_skip_verify
// does.
func secureGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestSecureMetrics runs the manager with SecureMetrics against the real API
// server: TokenReview and SubjectAccessReview decide, RBAC's nonResourceURLs
// grant.
func TestSecureMetrics(t *testing.T) {
	installWidgetCRD(t)
	ns := controlplane.Namespace(t, cp)
	admin := kubernetes.NewForConfigOrDie(cp.Config())
	createWidget(t, ns, "w", "blue")

	m := newManager(t, func(o *manager.Options) {
		// A short deny cache: the grant below takes effect within a second.
		o.SecureMetrics = &secure.Options{DenyCacheTTL: time.Second}
	})
	require.NoError(t, m.HandleMetricsPath("/modules", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `[{"name":"secret-module"}]`)
	})))
	widgets(t, m, "statussync", nil)
	r := start(t, m)
	waitConverged(t, ns, 1)
	base := "https://" + r.MetricsAddress()

	code, _ := get(t, "http://"+r.MetricsAddress()+"/metrics")
	assert.Equal(t, http.StatusBadRequest, code, "plain HTTP is refused")

	reader := saToken(t, admin, ns, "scraper")
	gone := saToken(t, admin, ns, "deleted")
	require.NoError(t, admin.CoreV1().ServiceAccounts(ns).Delete(t.Context(), "deleted", metav1.DeleteOptions{}))
	forged := strings.Join(append(strings.Split(reader, ".")[:2], "Zm9yZ2Vk"), ".") // a valid token's claims, a wrong signature

	denied := func(t *testing.T, want int, token string) {
		t.Helper()
		for _, path := range []string{"/metrics", "/modules", "/debug/pprof/"} {
			code, body := secureGet(t, base+path, token)
			assert.Equal(t, want, code, "%s: %s", path, body)
			assert.NotContains(t, body, "controller_runtime", path)
			assert.NotContains(t, body, "secret-module", path)
		}
	}
	t.Run("no token", func(t *testing.T) { denied(t, http.StatusUnauthorized, "") })
	t.Run("malformed token", func(t *testing.T) { denied(t, http.StatusUnauthorized, "not-a-jwt") })
	t.Run("forged token", func(t *testing.T) { denied(t, http.StatusUnauthorized, forged) })
	t.Run("token of a deleted ServiceAccount", func(t *testing.T) { denied(t, http.StatusUnauthorized, gone) })
	t.Run("token without the ClusterRole", func(t *testing.T) { denied(t, http.StatusForbidden, reader) })

	// What deploy/ grants as wre-metrics-reader, under a name of this test's.
	role := "wre-metrics-reader-" + ns
	_, err := admin.RbacV1().ClusterRoles().Create(t.Context(), &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics", "/modules"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().ClusterRoleBindings().Create(t.Context(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scraper"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = admin.RbacV1().ClusterRoleBindings().Delete(t.Context(), role, metav1.DeleteOptions{})
		_ = admin.RbacV1().ClusterRoles().Delete(t.Context(), role, metav1.DeleteOptions{})
	})

	t.Run("token with the ClusterRole", func(t *testing.T) {
		require.Eventually(t, func() bool {
			code, _ := secureGet(t, base+"/metrics", reader)
			return code == http.StatusOK
		}, 30*time.Second, 200*time.Millisecond, "the binding takes effect once the denial is no longer cached")
		code, body := secureGet(t, base+"/metrics", reader)
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, `controller_runtime_reconcile_total{controller="statussync",result="success"}`)
		code, body = secureGet(t, base+"/modules", reader)
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, body, "secret-module")
		code, _ = secureGet(t, base+"/debug/pprof/", reader)
		assert.Equal(t, http.StatusForbidden, code, "the role names /metrics and /modules only")
	})
}

func TestSecureMetricsBadCertDir(t *testing.T) {
	_, err := manager.New(manager.Options{Config: cp.Config(), SecureMetrics: &secure.Options{CertDir: t.TempDir()}})
	assert.ErrorContains(t, err, "load certificate")
}
