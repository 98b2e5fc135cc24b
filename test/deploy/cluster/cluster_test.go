// Package cluster checks the manifests of deploy/ against a real local
// control plane (etcd, kube-apiserver and kube-controller-manager built from
// source): server-side dry-run of every object, and the engine's RBAC as seen
// by the API server when it acts as the deployed ServiceAccount.
package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/deploy"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunMain(m, &cp)) }

const (
	engineNamespace = "wre-system"
	engineSA        = "wre"
	fieldManager    = "wre-deploy-test"
	leaseName       = "wre-leader" // --leader-election-id of deploy/base
)

// warnings collects the API server's Warning headers (deprecations, pod
// security violations), which a clean manifest does not trigger.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// applier applies unstructured objects with server-side apply.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	warn   *warnings
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	w := &warnings{}
	cfg.WarningHandler = w
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warn: w}
}

func (a *applier) resource(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

func (a *applier) apply(ctx context.Context, o *unstructured.Unstructured, dryRun bool) error {
	r, err := a.resource(o)
	if err != nil {
		return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
	}
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := r.Apply(ctx, o.GetName(), o, opts); err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	return nil
}

func isCRD(o *unstructured.Unstructured) bool {
	return o.GetKind() == "CustomResourceDefinition"
}

// TestServerSideDryRun sends every object of every kustomization to the API
// server with dryRun=All: schema validation, defaulting, admission (pod
// security of wre-system included) run, nothing is stored. The namespace is
// created for real first, since namespaced objects cannot be dry-run into a
// namespace that does not exist.
func TestServerSideDryRun(t *testing.T) {
	a := newApplier(t, cp.Config())
	total := 0
	for _, dir := range deploy.Kustomizations {
		t.Run(dir, func(t *testing.T) {
			ctx := t.Context()
			objs, err := deploy.Render(dir)
			require.NoError(t, err)
			// CRDs first, then the namespace (stored), then everything else.
			for _, o := range objs {
				if isCRD(o) {
					require.NoError(t, a.apply(ctx, o, true))
				}
			}
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					require.NoError(t, a.apply(ctx, o, false))
				}
			}
			n := 0
			for _, o := range objs {
				if !isCRD(o) && o.GetKind() != "Namespace" {
					assert.NoError(t, a.apply(ctx, o, true))
				}
				n++
			}
			assert.Empty(t, a.warn.take(), "API server warnings")
			t.Logf("%s: %d objects pass server-side dry-run", dir, n)
			total += n
		})
	}
	t.Logf("%d objects in %d kustomizations pass server-side dry-run", total, len(deploy.Kustomizations))
}

// applyRBAC stores the ServiceAccount and RBAC objects of dir. The
// cluster-scoped ones (ClusterRoles, ClusterRoleBindings) are deleted when the
// test ends: they outlive namespaces, and a role aggregated by one test (the
// examples overlay's) would otherwise widen what the next test's base grants.
func applyRBAC(t *testing.T, dir string) {
	t.Helper()
	a := newApplier(t, cp.Config())
	objs, err := deploy.Render(dir)
	require.NoError(t, err)
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			t.Cleanup(func() {
				r, err := a.resource(o)
				if err == nil {
					err = r.Delete(context.Background(), o.GetName(), metav1.DeleteOptions{})
				}
				if err != nil && !apierrors.IsNotFound(err) {
					t.Errorf("delete %s %s: %v", o.GetKind(), o.GetName(), err)
				}
			})
			fallthrough
		case "Namespace", "ServiceAccount", "Role", "RoleBinding":
			require.NoError(t, a.apply(t.Context(), o, false))
		}
	}
}

// eventually polls f until it returns nil or the time is up.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			require.NoError(t, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// outcome classifies an API error as allowed (any answer but Forbidden) or
// denied (403 Forbidden).
func denied(err error) bool { return apierrors.IsForbidden(err) }

func describe(err error) string {
	if err == nil {
		return "ok"
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}
