// Command app-operator is a wre module that runs an App (demo.wre.dev/v1) as a
// Deployment and a Service it owns, written with server-side apply, and reports
// the Deployment's availability in the App's status.
//
// It is written with the lean SDK (ABI v2): the App arrives with the request,
// projected to the fields below, and the children and the App's status are
// written by server-side apply of the declared fields. The children carry a
// controller owner reference to the App, so the garbage collector deletes
// them with it, and the host reconciles the App when they change (owns in
// module.yaml).
package main

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/wre-dev/wre/guest-sdk/lean"
)

const (
	// LabelApp selects the pods of an App.
	LabelApp = "demo.wre.dev/app"
	// ConditionReady is the App condition that tells whether it is available.
	ConditionReady = "Ready"
)

// App is the part of an App custom resource this module reads and writes.
//
// +wre:resource group=demo.wre.dev version=v1 resource=apps kind=App
type App struct {
	lean.Meta
	// Image is the container image. Required.
	Image string `wre:"spec.image"`
	// Replicas is the number of pods. The CRD's schema defaults it to 1, so
	// the API server sets it on every App.
	Replicas int32 `wre:"spec.replicas"`
	// Port is the TCP port the container listens on and the Service exposes.
	Port int32 `wre:"spec.port"`

	// ObservedGeneration is the generation of the App last reconciled.
	ObservedGeneration int64 `wre:"status.observedGeneration"`
	// AvailableReplicas is the Deployment's number of available pods.
	AvailableReplicas int32 `wre:"status.availableReplicas"`
	// Conditions holds Ready: True when every replica of the current spec is
	// available.
	Conditions []Condition `wre:"status.conditions"`
}

// Condition is a metav1.Condition.
type Condition struct {
	Type               string `wre:"type"`
	Status             string `wre:"status"`
	Reason             string `wre:"reason"`
	Message            string `wre:"message"`
	ObservedGeneration int64  `wre:"observedGeneration"`
	LastTransitionTime string `wre:"lastTransitionTime"`
}

// OwnerReference is a metav1.OwnerReference.
type OwnerReference struct {
	APIVersion         string `wre:"apiVersion"`
	Kind               string `wre:"kind"`
	Name               string `wre:"name"`
	UID                string `wre:"uid"`
	Controller         bool   `wre:"controller"`
	BlockOwnerDeletion bool   `wre:"blockOwnerDeletion"`
}

// Deployment is the part of an App's Deployment this module owns, and the
// status it reads back from the apply.
//
// +wre:resource group=apps version=v1 resource=deployments kind=Deployment
type Deployment struct {
	lean.Meta
	Labels          lean.Map         `wre:"metadata.labels"`
	OwnerReferences []OwnerReference `wre:"metadata.ownerReferences"`
	Replicas        int32            `wre:"spec.replicas"`
	Selector        lean.Map         `wre:"spec.selector.matchLabels"`
	PodLabels       lean.Map         `wre:"spec.template.metadata.labels"`
	Containers      []Container      `wre:"spec.template.spec.containers"`

	ObservedGeneration int64 `wre:"status.observedGeneration"`
	AvailableReplicas  int32 `wre:"status.availableReplicas"`
	UpdatedReplicas    int32 `wre:"status.updatedReplicas"`
}

// Container is a corev1.Container, as far as this module sets it.
type Container struct {
	Name  string          `wre:"name"`
	Image string          `wre:"image"`
	Ports []ContainerPort `wre:"ports"`
}

// ContainerPort is a corev1.ContainerPort.
type ContainerPort struct {
	Name          string `wre:"name"`
	ContainerPort int32  `wre:"containerPort"`
	Protocol      string `wre:"protocol"`
}

// Service is the part of an App's Service this module owns.
//
// +wre:resource version=v1 resource=services kind=Service
type Service struct {
	lean.Meta
	Labels          lean.Map         `wre:"metadata.labels"`
	OwnerReferences []OwnerReference `wre:"metadata.ownerReferences"`
	Selector        lean.Map         `wre:"spec.selector"`
	Ports           []ServicePort    `wre:"spec.ports"`
}

// ServicePort is a corev1.ServicePort; TargetPort names the container port.
type ServicePort struct {
	Name       string `wre:"name"`
	Port       int32  `wre:"port"`
	TargetPort string `wre:"targetPort"`
	Protocol   string `wre:"protocol"`
}

func init() { lean.Register(lean.For(reconcile)) }

// main is never called: the host starts the module as a reactor.
func main() {}

// reconcile applies the App's Deployment and Service and updates its status.
func reconcile(ctx context.Context, h *lean.Host, req lean.Request[App]) (lean.Result, error) {
	app := req.Object
	// The garbage collector removes the children of a deleted App.
	if app == nil || app.Deleting {
		return lean.Result{}, nil
	}
	if err := validate(app); err != nil {
		h.Event(ctx, "Warning", "InvalidSpec", err.Error())
		status := *app
		status.ObservedGeneration = app.Generation
		status.Conditions = setCondition(app.Conditions, Condition{
			Type: ConditionReady, Status: "False", Reason: "InvalidSpec", Message: err.Error(), ObservedGeneration: app.Generation,
		})
		if serr := updateStatus(ctx, h, app, &status); serr != nil {
			return lean.Result{}, serr
		}
		// Retrying cannot fix the spec: a change to it triggers a new reconcile.
		return lean.Result{}, lean.TerminalError(err)
	}

	dep := deploymentFor(app)
	if err := h.Apply(ctx, dep); err != nil {
		return lean.Result{}, errors.New("apply deployment: " + err.Error())
	}
	if err := h.Apply(ctx, serviceFor(app)); err != nil {
		return lean.Result{}, errors.New("apply service: " + err.Error())
	}
	if err := updateStatus(ctx, h, app, statusFor(app, dep)); err != nil {
		return lean.Result{}, err
	}
	return lean.Result{}, nil
}

// updateStatus applies want's status when it differs from app's, and
// records an event when the App becomes available.
func updateStatus(ctx context.Context, h *lean.Host, app, want *App) error {
	if equalStatus(app, want) {
		return nil
	}
	wasReady := isReady(app.Conditions)
	if err := h.ApplyStatus(ctx, want); err != nil {
		return errors.New("apply status: " + err.Error())
	}
	if ready := isReady(want.Conditions); ready != wasReady {
		h.Info("readiness changed", "app", app.Namespace+"/"+app.Name, "ready", strconv.FormatBool(ready))
		if ready {
			h.Event(ctx, "Normal", "Available", strconv.Itoa(int(want.AvailableReplicas))+" replicas available")
		}
	}
	return nil
}

func validate(a *App) error {
	var errs []error
	if a.Image == "" {
		errs = append(errs, errors.New("spec.image is required"))
	}
	if a.Port < 1 || a.Port > 65535 {
		errs = append(errs, errors.New("spec.port "+strconv.Itoa(int(a.Port))+" is not in 1-65535"))
	}
	if a.Replicas < 0 {
		errs = append(errs, errors.New("spec.replicas "+strconv.Itoa(int(a.Replicas))+" is negative"))
	}
	return errors.Join(errs...)
}

// controllerRef is the owner reference of a child of app.
func controllerRef(app *App) []OwnerReference {
	return []OwnerReference{{APIVersion: "demo.wre.dev/v1", Kind: "App", Name: app.Name, UID: app.UID, Controller: true, BlockOwnerDeletion: true}}
}

// deploymentFor is the apply configuration of app's Deployment: only the
// fields the module owns.
func deploymentFor(app *App) *Deployment {
	selector := lean.MapOf(map[string]string{LabelApp: app.Name})
	return &Deployment{
		Meta:            lean.Meta{Namespace: app.Namespace, Name: app.Name},
		Labels:          selector,
		OwnerReferences: controllerRef(app),
		Replicas:        app.Replicas,
		Selector:        selector,
		PodLabels:       selector,
		Containers: []Container{{Name: "app", Image: app.Image,
			Ports: []ContainerPort{{Name: "http", ContainerPort: app.Port, Protocol: "TCP"}}}},
	}
}

// serviceFor is the apply configuration of app's Service.
func serviceFor(app *App) *Service {
	selector := lean.MapOf(map[string]string{LabelApp: app.Name})
	return &Service{
		Meta:            lean.Meta{Namespace: app.Namespace, Name: app.Name},
		Labels:          selector,
		OwnerReferences: controllerRef(app),
		Selector:        selector,
		Ports:           []ServicePort{{Name: "http", Port: app.Port, TargetPort: "http", Protocol: "TCP"}},
	}
}

// statusFor computes app's status from its applied Deployment: Ready when the
// Deployment controller has seen the current spec and every replica is
// available.
func statusFor(app *App, dep *Deployment) *App {
	status := *app
	status.ObservedGeneration = app.Generation
	status.AvailableReplicas = dep.AvailableReplicas
	cond := Condition{
		Type: ConditionReady, Status: "False", Reason: "Progressing",
		Message:            strconv.Itoa(int(dep.AvailableReplicas)) + " of " + strconv.Itoa(int(app.Replicas)) + " replicas available",
		ObservedGeneration: app.Generation,
	}
	if dep.ObservedGeneration >= dep.Generation && dep.AvailableReplicas >= app.Replicas && dep.UpdatedReplicas >= app.Replicas {
		cond.Status, cond.Reason = "True", "Available"
	}
	status.Conditions = setCondition(app.Conditions, cond)
	return &status
}

// setCondition returns conditions with c in place of the condition of its
// type, keeping the transition time when the status did not change, as
// meta.SetStatusCondition does. conditions is not modified.
func setCondition(conditions []Condition, c Condition) []Condition {
	out := make([]Condition, 0, len(conditions)+1)
	replaced := false
	for _, old := range conditions {
		if old.Type != c.Type {
			out = append(out, old)
			continue
		}
		c.LastTransitionTime = old.LastTransitionTime
		if old.Status != c.Status || c.LastTransitionTime == "" {
			c.LastTransitionTime = now()
		}
		out, replaced = append(out, c), true
	}
	if !replaced {
		c.LastTransitionTime = now()
		out = append(out, c)
	}
	return out
}

// now is the transition time of a condition: RFC 3339, in seconds.
func now() string { return time.Now().UTC().Format(time.RFC3339) }

func isReady(conditions []Condition) bool {
	for _, c := range conditions {
		if c.Type == ConditionReady {
			return c.Status == "True"
		}
	}
	return false
}

// equalStatus compares the statuses of a and b, ignoring condition
// transition times.
func equalStatus(a, b *App) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.AvailableReplicas != b.AvailableReplicas || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for _, c := range a.Conditions {
		found := false
		for _, d := range b.Conditions {
			if d.Type == c.Type {
				found = d.Status == c.Status && d.Reason == c.Reason && d.Message == c.Message && d.ObservedGeneration == c.ObservedGeneration
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
