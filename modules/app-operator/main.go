// Command app-operator is a wre module that runs an App (demo.wre.dev/v1) as a
// Deployment and a Service it owns, written with server-side apply, and reports
// the Deployment's availability in the App's status.
//
// The children carry a controller owner reference to the App, so the garbage
// collector deletes them with it, and the host reconciles the App when they
// change (owns in module.yaml).
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

const (
	// LabelApp selects the pods of an App.
	LabelApp = "demo.wre.dev/app"
	// ConditionReady is the App condition that tells whether it is available.
	ConditionReady = "Ready"
)

var module = wre.Module{
	Scheme: newScheme(),
	Setup: func(h *wre.Host) (wre.Reconciler, error) {
		return &reconciler{client: h.Client(), recorder: h.Recorder(), log: h.Log()}, nil
	},
}

func init() { wre.Register(module) }

// main is never called: the host starts the module as a reactor.
func main() {}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, addToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

type reconciler struct {
	client   client.Client
	recorder wre.EventRecorder
	log      logr.Logger
}

// Reconcile applies the App's Deployment and Service and updates its status.
func (r *reconciler) Reconcile(ctx context.Context, req wre.Request) (wre.Result, error) {
	var app App
	if err := r.client.Get(ctx, req.NamespacedName, &app); err != nil {
		if apierrors.IsNotFound(err) {
			return wre.Result{}, nil
		}
		return wre.Result{}, err
	}
	// The garbage collector removes the children of a deleted App.
	if app.DeletionTimestamp != nil {
		return wre.Result{}, nil
	}
	if err := validate(&app.Spec); err != nil {
		r.recorder.Eventf(&app, corev1.EventTypeWarning, "InvalidSpec", "%v", err)
		status := app.Status.deepCopy()
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: ConditionReady, Status: metav1.ConditionFalse, Reason: "InvalidSpec", Message: err.Error(),
			ObservedGeneration: app.Generation,
		})
		status.ObservedGeneration = app.Generation
		if serr := r.updateStatus(ctx, &app, status); serr != nil {
			return wre.Result{}, serr
		}
		// Retrying cannot fix the spec: a change to it triggers a new reconcile.
		return wre.Result{}, wre.TerminalError(err)
	}

	dep := deploymentFor(&app)
	if err := r.client.Patch(ctx, dep, client.Apply, client.ForceOwnership); err != nil {
		return wre.Result{}, fmt.Errorf("apply deployment: %w", err)
	}
	if err := r.client.Patch(ctx, serviceFor(&app), client.Apply, client.ForceOwnership); err != nil {
		return wre.Result{}, fmt.Errorf("apply service: %w", err)
	}
	if err := r.updateStatus(ctx, &app, statusFor(&app, dep)); apierrors.IsConflict(err) {
		// The App read from the cache is older than the server's (this
		// module's own last status write, or another writer's): not an
		// error, but news that the cache is behind. Look again shortly, when
		// it has caught up.
		r.log.V(1).Info("status update conflicts with a newer App; looking again shortly", "app", req.NamespacedName.String())
		return wre.Result{RequeueAfter: conflictRequeue}, nil
	} else if err != nil {
		return wre.Result{}, err
	}
	return wre.Result{}, nil
}

// conflictRequeue is how soon an App whose status update met a newer version
// is reconciled again.
const conflictRequeue = time.Second

// updateStatus writes status when it differs from the App's.
func (r *reconciler) updateStatus(ctx context.Context, app *App, status AppStatus) error {
	if equalStatus(app.Status, status) {
		return nil
	}
	wasReady := meta.IsStatusConditionTrue(app.Status.Conditions, ConditionReady)
	app.Status = status
	if err := r.client.Status().Update(ctx, app); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	if ready := meta.IsStatusConditionTrue(status.Conditions, ConditionReady); ready != wasReady {
		r.log.Info("readiness changed", "app", client.ObjectKeyFromObject(app).String(), "ready", ready)
		if ready {
			r.recorder.Eventf(app, corev1.EventTypeNormal, "Available", "%d replicas available", status.AvailableReplicas)
		}
	}
	return nil
}

func validate(s *AppSpec) error {
	var errs []error
	if s.Image == "" {
		errs = append(errs, errors.New("spec.image is required"))
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("spec.port %d is not in 1-65535", s.Port))
	}
	if s.Replicas != nil && *s.Replicas < 0 {
		errs = append(errs, fmt.Errorf("spec.replicas %d is negative", *s.Replicas))
	}
	return errors.Join(errs...)
}

func replicas(s *AppSpec) int32 {
	if s.Replicas == nil {
		return 1
	}
	return *s.Replicas
}

// objectMeta is the metadata of a child of app: same name and namespace,
// the selector label, and a controller reference to app.
func objectMeta(app *App) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace:       app.Namespace,
		Name:            app.Name,
		Labels:          map[string]string{LabelApp: app.Name},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(app, GroupVersion.WithKind("App"))},
	}
}

// deploymentFor is the apply configuration of app's Deployment: only the
// fields the module owns.
func deploymentFor(app *App) *appsv1.Deployment {
	n := replicas(&app.Spec)
	return &appsv1.Deployment{
		ObjectMeta: objectMeta(app),
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelApp: app.Name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelApp: app.Name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: app.Spec.Image,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: app.Spec.Port, Protocol: corev1.ProtocolTCP}},
				}}},
			},
		},
	}
}

// serviceFor is the apply configuration of app's Service.
func serviceFor(app *App) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: objectMeta(app),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{LabelApp: app.Name},
			Ports: []corev1.ServicePort{{
				Name: "http", Port: app.Spec.Port, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// statusFor computes app's status from its applied Deployment: Ready when the
// Deployment controller has seen the current spec and every replica is
// available.
func statusFor(app *App, dep *appsv1.Deployment) AppStatus {
	status := app.Status.deepCopy()
	status.ObservedGeneration = app.Generation
	status.AvailableReplicas = dep.Status.AvailableReplicas
	want := replicas(&app.Spec)
	cond := metav1.Condition{
		Type: ConditionReady, Status: metav1.ConditionFalse, Reason: "Progressing",
		Message:            fmt.Sprintf("%d of %d replicas available", dep.Status.AvailableReplicas, want),
		ObservedGeneration: app.Generation,
	}
	if dep.Status.ObservedGeneration >= dep.Generation && dep.Status.AvailableReplicas >= want && dep.Status.UpdatedReplicas >= want {
		cond.Status, cond.Reason = metav1.ConditionTrue, "Available"
	}
	meta.SetStatusCondition(&status.Conditions, cond)
	return status
}

// equalStatus compares statuses, ignoring condition transition times.
func equalStatus(a, b AppStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.AvailableReplicas != b.AvailableReplicas || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for _, c := range a.Conditions {
		d := meta.FindStatusCondition(b.Conditions, c.Type)
		if d == nil || d.Status != c.Status || d.Reason != c.Reason || d.Message != c.Message || d.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	return true
}
