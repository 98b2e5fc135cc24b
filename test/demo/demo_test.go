package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// TestDemo runs `make demo` end to end (the wre binary, `wre build`, `wre
// package --apply`, `wre run` with the three example modules on the local
// control plane) and then checks each module's behaviour beyond the first
// reconcile: changes propagate, finalizers clean up, owned objects drive their
// owner's status, and garbage collection removes children.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	err := run(ctx, options{exitWhenDone: true, reconcileTimeout: 8 * time.Minute, then: func(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface) error {
		t.Run("status-sync follows spec changes", func(t *testing.T) { statusSyncFollows(ctx, t, dyn) })
		t.Run("configmap-replicator syncs and cleans up", func(t *testing.T) { replicatorSyncsAndCleansUp(ctx, t, kube) })
		t.Run("app-operator status and garbage collection", func(t *testing.T) { appOperatorStatusAndGC(ctx, t, kube, dyn) })
		return nil
	}})
	require.NoError(t, err)
}

// eventually polls cond every 250ms for up to two minutes.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, 2*time.Minute, 250*time.Millisecond, fmt.Sprintf(format, args...))
}

func statusSyncFollows(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	patch := []byte(`{"spec":{"desired":"purple"}}`)
	_, err := dyn.Resource(widgets).Namespace("demo").Patch(ctx, "widget-1", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	eventually(t, func() bool {
		w, err := dyn.Resource(widgets).Namespace("demo").Get(ctx, "widget-1", metav1.GetOptions{})
		current, _, _ := unstructured.NestedString(w.Object, "status", "current")
		return err == nil && current == "purple"
	}, "widget-1 status.current follows spec.desired to purple")
}

func replicatorSyncsAndCleansUp(ctx context.Context, t *testing.T, kube kubernetes.Interface) {
	cms := kube.CoreV1().ConfigMaps
	src, err := cms("demo").Get(ctx, "shared-settings", metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, src.Finalizers, "wre.dev/replicator", "the source carries the replicator's finalizer")

	src.Data["log-level"] = "debug"
	_, err = cms("demo").Update(ctx, src, metav1.UpdateOptions{})
	require.NoError(t, err)
	for _, ns := range []string{"team-a", "team-b"} {
		eventually(t, func() bool {
			c, err := cms(ns).Get(ctx, "shared-settings", metav1.GetOptions{})
			return err == nil && c.Data["log-level"] == "debug"
		}, "the change reaches %s", ns)
	}

	require.NoError(t, cms("demo").Delete(ctx, "shared-settings", metav1.DeleteOptions{}))
	for _, ns := range []string{"team-a", "team-b"} {
		eventually(t, func() bool {
			_, err := cms(ns).Get(ctx, "shared-settings", metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, "the copy in %s is removed", ns)
	}
	eventually(t, func() bool {
		_, err := cms("demo").Get(ctx, "shared-settings", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, "the source is released by its finalizer and deleted")
}

func appReady(ctx context.Context, dyn dynamic.Interface) (*metav1.Condition, error) {
	app, err := dyn.Resource(apps).Namespace("demo").Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	raw, _, _ := unstructured.NestedSlice(app.Object, "status", "conditions")
	var conds []metav1.Condition
	for _, c := range raw {
		m, _ := c.(map[string]any)
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		reason, _ := m["reason"].(string)
		conds = append(conds, metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason})
	}
	return meta.FindStatusCondition(conds, "Ready"), nil
}

func appOperatorStatusAndGC(ctx context.Context, t *testing.T, kube kubernetes.Interface, dyn dynamic.Interface) {
	eventually(t, func() bool {
		c, err := appReady(ctx, dyn)
		return err == nil && c != nil && c.Status == metav1.ConditionFalse
	}, "the App reports Ready=False while its Deployment has no available replicas")

	// No kubelet runs here: play the deployment controller and report the
	// replicas available. The module watches the Deployment it owns.
	dep, err := kube.AppsV1().Deployments("demo").Get(ctx, "hello", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, dep.OwnerReferences, "the Deployment is owned by the App")
	dep.Status.ObservedGeneration = dep.Generation
	dep.Status.Replicas, dep.Status.UpdatedReplicas, dep.Status.ReadyReplicas, dep.Status.AvailableReplicas = 2, 2, 2, 2
	_, err = kube.AppsV1().Deployments("demo").UpdateStatus(ctx, dep, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, func() bool {
		c, err := appReady(ctx, dyn)
		return err == nil && c != nil && c.Status == metav1.ConditionTrue
	}, "the App turns Ready=True once its Deployment is available")

	require.NoError(t, dyn.Resource(apps).Namespace("demo").Delete(ctx, "hello", metav1.DeleteOptions{}))
	eventually(t, func() bool {
		_, errD := kube.AppsV1().Deployments("demo").Get(ctx, "hello", metav1.GetOptions{})
		_, errS := kube.CoreV1().Services("demo").Get(ctx, "hello", metav1.GetOptions{})
		return apierrors.IsNotFound(errD) && apierrors.IsNotFound(errS)
	}, "garbage collection removes the App's Deployment and Service")
}
