package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/deploy"
)

// check is one action of the engine's identity and whether RBAC must allow it.
type check struct {
	name  string
	allow bool
	do    func(ctx context.Context) error
}

// run performs every check and counts the outcomes. An action is denied when
// the API server answers 403 Forbidden; any other answer (including NotFound
// or AlreadyExists) means RBAC let it through.
func run(t *testing.T, checks []check) (allowed, refused int) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := c.do(t.Context())
			if c.allow {
				assert.False(t, denied(err), "must be allowed: %v", err)
				assert.NoError(t, err)
			} else {
				assert.True(t, denied(err), "must be denied, got: %s", describe(err))
			}
			t.Logf("%-8v %s", map[bool]string{true: "allowed", false: "denied"}[!denied(err)], describe(err))
		})
		if c.allow {
			allowed++
		} else {
			refused++
		}
	}
	return allowed, refused
}

var dryRun = []string{metav1.DryRunAll}

func configMap(ns, name string, labels map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Data: map[string]string{"k": "v"}}
}

// tokenConfig returns a configuration that authenticates as the
// ServiceAccount namespace/name with a real bound token (not impersonation),
// so that it can itself impersonate.
func tokenConfig(t *testing.T, admin kubernetes.Interface, namespace, name string) *rest.Config {
	t.Helper()
	tr, err := admin.CoreV1().ServiceAccounts(namespace).CreateToken(t.Context(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg := rest.AnonymousClientConfig(cp.Config())
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// whoAmI asks the API server who cfg is (SelfSubjectReview).
func whoAmI(ctx context.Context, cfg *rest.Config) (string, error) {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}

func impersonating(cfg *rest.Config, user string, groups ...string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// TestEngineRBAC applies the base RBAC and acts as the deployed
// ServiceAccount: everything the engine needs is allowed, everything else
// that matters is denied.
func TestEngineRBAC(t *testing.T) {
	applyRBAC(t, "deploy")
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	other := controlplane.Namespace(t, cp)

	// Fixtures, made by the admin.
	_, err = admin.CoreV1().ConfigMaps(engineNamespace).Create(ctx, configMap(engineNamespace, "wre-module-demo", map[string]string{"wre.dev/module": "demo"}), metav1.CreateOptions{})
	require.NoError(t, ignoreExists(err))
	// An engine started later would try to load it.
	t.Cleanup(func() {
		err := admin.CoreV1().ConfigMaps(engineNamespace).Delete(context.Background(), "wre-module-demo", metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete ConfigMap wre-module-demo: %v", err)
		}
	})
	_, err = admin.CoreV1().Secrets(engineNamespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "not-for-the-engine"}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	require.NoError(t, ignoreExists(err))
	_, err = admin.CoordinationV1().Leases(engineNamespace).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses-lease"}}, metav1.CreateOptions{})
	require.NoError(t, ignoreExists(err))
	for _, sa := range []struct{ ns, name string }{{engineNamespace, "wre-module-demo"}, {other, "powerful"}} {
		_, err = admin.CoreV1().ServiceAccounts(sa.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.name}}, metav1.CreateOptions{})
		require.NoError(t, ignoreExists(err))
	}

	engineCfg := cp.ServiceAccountConfig(engineNamespace, engineSA)
	engine, err := kubernetes.NewForConfig(engineCfg)
	require.NoError(t, err)
	engineToken := tokenConfig(t, admin, engineNamespace, engineSA)
	leases := engine.CoordinationV1().Leases(engineNamespace)

	allowed, refused := run(t, []check{
		{"create the leader Lease", true, func(ctx context.Context) error {
			_, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: leaseName}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("wre-0")}}, metav1.CreateOptions{})
			return ignoreExists(err)
		}},
		{"get and update the leader Lease", true, func(ctx context.Context) error {
			l, err := leases.Get(ctx, leaseName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			return err
		}},
		{"watch the leader Lease by name", true, func(ctx context.Context) error {
			byName := metav1.ListOptions{FieldSelector: "metadata.name=" + leaseName}
			if _, err := leases.List(ctx, byName); err != nil {
				return err
			}
			w, err := leases.Watch(ctx, byName)
			if err != nil {
				return err
			}
			w.Stop()
			return nil
		}},
		{"list and watch module ConfigMaps in wre-system", true, func(ctx context.Context) error {
			if _, err := engine.CoreV1().ConfigMaps(engineNamespace).List(ctx, metav1.ListOptions{LabelSelector: "wre.dev/module"}); err != nil {
				return err
			}
			w, err := engine.CoreV1().ConfigMaps(engineNamespace).Watch(ctx, metav1.ListOptions{LabelSelector: "wre.dev/module"})
			if err != nil {
				return err
			}
			w.Stop()
			_, err = engine.CoreV1().ConfigMaps(engineNamespace).Get(ctx, "wre-module-demo", metav1.GetOptions{})
			return err
		}},
		{"create and patch an Event in any namespace", true, func(ctx context.Context) error {
			ev, err := engine.CoreV1().Events(other).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{GenerateName: "wre-"},
				InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", Namespace: other, Name: "x", APIVersion: "v1"},
				Reason:         "Reconciled", Message: "test", Type: corev1.EventTypeNormal,
				Source: corev1.EventSource{Component: "wre"},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			_, err = engine.CoreV1().Events(other).Patch(ctx, ev.Name, "application/merge-patch+json", []byte(`{"count":2}`), metav1.PatchOptions{})
			return err
		}},
		{"create an events.k8s.io Event", true, func(ctx context.Context) error {
			_, err := engine.EventsV1().Events(engineNamespace).Create(ctx, &eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "wre-"}, EventTime: metav1.MicroTime{Time: time.Now()},
				Regarding: corev1.ObjectReference{Kind: "ConfigMap", Namespace: engineNamespace, Name: "wre-module-demo", APIVersion: "v1"},
				Reason:    "Loaded", Action: "Load", Note: "test", Type: corev1.EventTypeNormal,
				ReportingController: "wre.dev/engine", ReportingInstance: "wre-0",
			}, metav1.CreateOptions{})
			return err
		}},
		{"impersonate a module ServiceAccount in wre-system", true, func(ctx context.Context) error {
			user, err := whoAmI(ctx, impersonating(engineToken, "system:serviceaccount:"+engineNamespace+":wre-module-demo"))
			if err == nil && user != "system:serviceaccount:"+engineNamespace+":wre-module-demo" {
				err = fmt.Errorf("impersonation yields %q", user)
			}
			return err
		}},
		{"review a token (--metrics-secure)", true, func(ctx context.Context) error {
			_, err := engine.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "x"}}, metav1.CreateOptions{})
			return err
		}},
		{"review a right (--metrics-secure)", true, func(ctx context.Context) error {
			_, err := engine.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: "someone", NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
			}}, metav1.CreateOptions{})
			return err
		}},

		{"read a Secret in wre-system", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Secrets(engineNamespace).Get(ctx, "not-for-the-engine", metav1.GetOptions{})
			return err
		}},
		{"list Secrets in all namespaces", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create a ConfigMap in wre-system (a module)", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().ConfigMaps(engineNamespace).Create(ctx, configMap(engineNamespace, "evil", map[string]string{"wre.dev/module": "evil"}), metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"update a module ConfigMap", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().ConfigMaps(engineNamespace).Update(ctx, configMap(engineNamespace, "wre-module-demo", map[string]string{"wre.dev/module": "demo"}), metav1.UpdateOptions{DryRun: dryRun})
			return err
		}},
		{"create a ConfigMap in another namespace", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().ConfigMaps(other).Create(ctx, configMap(other, "x", nil), metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"list ConfigMaps in another namespace", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().ConfigMaps(other).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list all Leases in wre-system", false, func(ctx context.Context) error {
			_, err := leases.List(ctx, metav1.ListOptions{})
			return err
		}},
		{"update another Lease in wre-system", false, func(ctx context.Context) error {
			_, err := leases.Update(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses-lease", Namespace: engineNamespace}}, metav1.UpdateOptions{DryRun: dryRun})
			return err
		}},
		{"read Events", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Events(other).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create a Pod in wre-system", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Pods(engineNamespace).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"bind itself a ClusterRole", false, func(ctx context.Context) error {
			_, err := engine.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "wre-escalate"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: engineNamespace, Name: engineSA}},
			}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"impersonate a ServiceAccount in another namespace", false, func(ctx context.Context) error {
			_, err := whoAmI(ctx, impersonating(engineToken, "system:serviceaccount:"+other+":powerful"))
			return err
		}},
		{"impersonate kube-system's controllers", false, func(ctx context.Context) error {
			_, err := whoAmI(ctx, impersonating(engineToken, "system:serviceaccount:kube-system:generic-garbage-collector"))
			return err
		}},
		{"impersonate a user in system:masters", false, func(ctx context.Context) error {
			_, err := whoAmI(ctx, impersonating(engineToken, "admin", "system:masters"))
			return err
		}},
	})
	t.Logf("engine ServiceAccount (deploy/): %d needed actions allowed, %d outside actions denied", allowed, refused)
}

// TestExampleModulesRBAC applies the examples overlay's RBAC and CRDs: once
// the controller manager has aggregated wre-example-modules into wre-modules,
// the engine can do what the example modules need, and still no more.
func TestExampleModulesRBAC(t *testing.T) {
	applyRBAC(t, "deploy/overlays/examples")
	ctx := t.Context()
	installCRDs(t, "deploy/overlays/examples")
	waitAggregated(t)

	other := controlplane.Namespace(t, cp)
	engineCfg := cp.ServiceAccountConfig(engineNamespace, engineSA)
	engine, err := kubernetes.NewForConfig(engineCfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(engineCfg)
	require.NoError(t, err)
	adminDyn, err := dynamic.NewForConfig(cp.Config())
	require.NoError(t, err)
	widgets := schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "widgets"}
	apps := schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "apps"}
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "demo.wre.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w", "namespace": other},
		"spec":     map[string]any{"desired": "blue"},
	}}
	_, err = adminDyn.Resource(widgets).Namespace(other).Create(ctx, w, metav1.CreateOptions{})
	require.NoError(t, err)

	allowed, refused := run(t, []check{
		{"list and watch Widgets and Apps in all namespaces", true, func(ctx context.Context) error {
			for _, r := range []schema.GroupVersionResource{widgets, apps} {
				if _, err := dyn.Resource(r).List(ctx, metav1.ListOptions{}); err != nil {
					return err
				}
				wt, err := dyn.Resource(r).Watch(ctx, metav1.ListOptions{})
				if err != nil {
					return err
				}
				wt.Stop()
			}
			return nil
		}},
		{"apply a Widget's status (status-sync, ABI v2)", true, func(ctx context.Context) error {
			force := true
			_, err := dyn.Resource(widgets).Namespace(other).Patch(ctx, "w", types.ApplyPatchType,
				[]byte(`{"apiVersion":"demo.wre.dev/v1","kind":"Widget","metadata":{"name":"w","namespace":"`+other+`"},"status":{"current":"blue"}}`),
				metav1.PatchOptions{FieldManager: "status-sync", Force: &force}, "status")
			return err
		}},
		{"list ConfigMaps in all namespaces and create one in another namespace", true, func(ctx context.Context) error {
			if _, err := engine.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{}); err != nil {
				return err
			}
			_, err := engine.CoreV1().ConfigMaps(other).Create(ctx, configMap(other, "replica", nil), metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"create a Deployment and a Service for an App", true, func(ctx context.Context) error {
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: other},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}},
					},
				},
			}
			if _, err := engine.AppsV1().Deployments(other).Create(ctx, d, metav1.CreateOptions{DryRun: dryRun}); err != nil {
				return err
			}
			s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: other},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "x"}, Ports: []corev1.ServicePort{{Port: 80}}}}
			_, err := engine.CoreV1().Services(other).Create(ctx, s, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"read a Secret", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Secrets(other).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create a Pod", false, func(ctx context.Context) error {
			_, err := engine.CoreV1().Pods(other).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"delete a Widget", false, func(ctx context.Context) error {
			return dyn.Resource(widgets).Namespace(other).Delete(ctx, "w", metav1.DeleteOptions{DryRun: dryRun})
		}},
		{"change a CRD", false, func(ctx context.Context) error {
			c, err := apiextensionsClient(engineCfg)
			if err != nil {
				return err
			}
			return c.Delete(ctx, "widgets.demo.wre.dev", metav1.DeleteOptions{DryRun: dryRun})
		}},
	})
	t.Logf("engine ServiceAccount (deploy/overlays/examples): %d actions of the example modules allowed, %d outside actions denied", allowed, refused)
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

var crdGVR = apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")

func apiextensionsClient(cfg *rest.Config) (dynamic.ResourceInterface, error) {
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return d.Resource(crdGVR), nil
}

// installCRDs stores the CRDs of dir and waits until they are established.
func installCRDs(t *testing.T, dir string) {
	t.Helper()
	a := newApplier(t, cp.Config())
	objs, err := deploy.Render(dir)
	require.NoError(t, err)
	crds, err := apiextensionsClient(cp.Config())
	require.NoError(t, err)
	for _, o := range objs {
		if !isCRD(o) {
			continue
		}
		require.NoError(t, a.apply(t.Context(), o, false))
		eventually(t, 30*time.Second, func() error {
			u, err := crds.Get(t.Context(), o.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd); err != nil {
				return err
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("CRD %s not established yet", o.GetName())
		})
	}
}

// waitAggregated waits until the clusterrole-aggregation controller of
// kube-controller-manager has filled wre-modules from the labelled
// ClusterRoles.
func waitAggregated(t *testing.T) {
	t.Helper()
	admin, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	eventually(t, 30*time.Second, func() error {
		r, err := admin.RbacV1().ClusterRoles().Get(t.Context(), "wre-modules", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(r.Rules) == 0 {
			return errors.New("ClusterRole wre-modules has no rules: is kube-controller-manager's clusterrole-aggregation controller running?")
		}
		return nil
	})
}
