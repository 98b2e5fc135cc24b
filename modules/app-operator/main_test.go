package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/sdktest"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

var key = types.NamespacedName{Namespace: "shop", Name: "web"}

func app(image string, replicas *int32, port int32) *App {
	return &App{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Spec:       AppSpec{Image: image, Replicas: replicas, Port: port},
	}
}

func TestCreatesChildren(t *testing.T) {
	tests := []struct {
		name     string
		app      *App
		replicas int32
	}{
		{name: "replicas default to 1", app: app("nginx:1", nil, 8080), replicas: 1},
		{name: "explicit replicas", app: app("nginx:1", ptr.To[int32](3), 8080), replicas: 3},
		{name: "zero replicas", app: app("nginx:1", ptr.To[int32](0), 8080), replicas: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sdktest.New(t, module, sdktest.WithObjects(tt.app))
			env.MustReconcile(key)

			var a App
			env.MustGet(key, &a)
			var dep appsv1.Deployment
			env.MustGet(key, &dep)
			var svc corev1.Service
			env.MustGet(key, &svc)

			for _, o := range []metav1.Object{&dep, &svc} {
				ref := metav1.GetControllerOf(o)
				require.NotNil(t, ref, "%T has a controller reference", o)
				assert.Equal(t, a.UID, ref.UID)
				assert.Equal(t, "App", ref.Kind)
				assert.Equal(t, "demo.wre.dev/v1", ref.APIVersion)
				assert.True(t, *ref.BlockOwnerDeletion)
			}
			assert.Equal(t, tt.replicas, *dep.Spec.Replicas)
			c := dep.Spec.Template.Spec.Containers
			require.Len(t, c, 1)
			assert.Equal(t, "nginx:1", c[0].Image)
			assert.Equal(t, int32(8080), c[0].Ports[0].ContainerPort)
			assert.Equal(t, map[string]string{LabelApp: "web"}, dep.Spec.Selector.MatchLabels)
			assert.Equal(t, dep.Spec.Selector.MatchLabels, dep.Spec.Template.Labels)
			assert.Equal(t, dep.Spec.Selector.MatchLabels, svc.Spec.Selector)
			assert.Equal(t, int32(8080), svc.Spec.Ports[0].Port)
			assert.Equal(t, "http", svc.Spec.Ports[0].TargetPort.String())

			var ops []string
			for _, w := range env.Writes() {
				ops = append(ops, w.String()+" "+w.PatchType)
			}
			assert.Equal(t, []string{
				"patch deployments shop/web application/apply-patch+yaml",
				"patch services shop/web application/apply-patch+yaml",
				"status_update apps shop/web ",
			}, ops)

			assert.Equal(t, a.Generation, a.Status.ObservedGeneration)
			ready := meta.FindStatusCondition(a.Status.Conditions, ConditionReady)
			require.NotNil(t, ready)
			// Zero replicas are available as soon as the Deployment controller
			// saw the spec, which the fake host never does.
			assert.Equal(t, metav1.ConditionFalse, ready.Status)
			assert.Equal(t, "Progressing", ready.Reason)
		})
	}
}

// makeAvailable plays the Deployment controller: all replicas available.
func makeAvailable(t *testing.T, env *sdktest.Env) {
	t.Helper()
	var dep appsv1.Deployment
	env.MustGet(key, &dep)
	n := *dep.Spec.Replicas
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
	require.NoError(t, env.Client().Status().Update(t.Context(), &dep))
}

func TestStatusFollowsDeployment(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(app("nginx:1", ptr.To[int32](2), 80)))
	env.MustReconcile(key)
	makeAvailable(t, env)

	env.ClearRecords()
	env.MustReconcile(key)
	var a App
	env.MustGet(key, &a)
	assert.Equal(t, int32(2), a.Status.AvailableReplicas)
	assert.True(t, meta.IsStatusConditionTrue(a.Status.Conditions, ConditionReady))
	require.Len(t, env.Events(), 1)
	assert.Equal(t, "Available", env.Events()[0].Reason)

	// Nothing changed: the applies are idempotent and the status is not rewritten.
	env.ClearRecords()
	env.MustReconcile(key)
	for _, w := range env.Writes() {
		assert.NotEqual(t, abi.OpStatusUpdate, w.Op)
	}

	// A new image makes the Deployment progress again.
	a.Spec.Image = "nginx:2"
	require.NoError(t, env.Client().Update(t.Context(), &a))
	env.MustReconcile(key)
	var dep appsv1.Deployment
	env.MustGet(key, &dep)
	assert.Equal(t, "nginx:2", dep.Spec.Template.Spec.Containers[0].Image)
	env.MustGet(key, &a)
	assert.False(t, meta.IsStatusConditionTrue(a.Status.Conditions, ConditionReady), "the new generation is not rolled out yet")
}

func TestInvalidSpecIsTerminal(t *testing.T) {
	tests := []struct {
		name string
		app  *App
		msg  string
	}{
		{name: "no image", app: app("", nil, 80), msg: "spec.image is required"},
		{name: "bad port", app: app("nginx", nil, 0), msg: "spec.port 0"},
		{name: "negative replicas", app: app("nginx", ptr.To[int32](-1), 80), msg: "spec.replicas -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sdktest.New(t, module, sdktest.WithObjects(tt.app))
			_, err := env.Reconcile(key)
			require.Error(t, err)
			assert.True(t, wre.IsTerminal(err))
			assert.Contains(t, err.Error(), tt.msg)

			var a App
			env.MustGet(key, &a)
			ready := meta.FindStatusCondition(a.Status.Conditions, ConditionReady)
			require.NotNil(t, ready)
			assert.Equal(t, "InvalidSpec", ready.Reason)
			require.Len(t, env.Events(), 1)
			assert.Equal(t, "Warning", env.Events()[0].Type)
			assert.True(t, apierrors.IsNotFound(env.Client().Get(t.Context(), key, &appsv1.Deployment{})))
		})
	}
}

func TestDeletingTheAppCollectsChildren(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(app("nginx:1", nil, 80)))
	env.MustReconcile(key)

	var a App
	env.MustGet(key, &a)
	require.NoError(t, env.Client().Delete(t.Context(), &a))
	env.MustReconcile(key) // the App is gone: nothing to do
	assert.Empty(t, env.Writes()[3:])
	assert.True(t, apierrors.IsNotFound(env.Client().Get(t.Context(), key, &appsv1.Deployment{})))
	assert.True(t, apierrors.IsNotFound(env.Client().Get(t.Context(), key, &corev1.Service{})))
}

func TestApplyErrorIsRetried(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(app("nginx:1", nil, 80)))
	env.FailNext(abi.OpPatch, "services", apierrors.NewConflict(schema.GroupResource{Resource: "services"}, "web", errors.New("field conflict")))
	_, err := env.Reconcile(key)
	require.Error(t, err)
	assert.False(t, wre.IsTerminal(err))
	assert.Contains(t, err.Error(), "apply service")
	env.MustReconcile(key)
	env.MustGet(key, &corev1.Service{})
}

// TestStatusConflictIsNotAnError plays a status update that races the cache:
// the cached App is older than the server's, so the update conflicts. That is
// no error (the module's error count stays 0) but a short requeue; the next
// reconcile writes the status.
func TestStatusConflictIsNotAnError(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(app("nginx:1", nil, 80)))
	env.FailNext(abi.OpStatusUpdate, "", apierrors.NewConflict(schema.GroupResource{Group: "demo.wre.dev", Resource: "apps"}, "web", errors.New("the object has been modified")))
	res, err := env.Reconcile(key)
	require.NoError(t, err, "a conflicting status update is not an error")
	assert.Equal(t, conflictRequeue, res.RequeueAfter)

	assert.Zero(t, env.MustReconcile(key).RequeueAfter)
	var a App
	env.MustGet(key, &a)
	assert.NotEmpty(t, a.Status.Conditions, "the next reconcile writes the status")
}
