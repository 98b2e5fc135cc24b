package main

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion of the App custom resource.
var GroupVersion = schema.GroupVersion{Group: "demo.wre.dev", Version: "v1"}

// App is an application: an image run as a Deployment behind a Service.
type App struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AppSpec   `json:"spec,omitempty"`
	Status AppStatus `json:"status,omitempty"`
}

// AppSpec is what the user wants to run.
type AppSpec struct {
	// Image is the container image. Required.
	Image string `json:"image,omitempty"`
	// Replicas is the number of pods. Defaults to 1.
	Replicas *int32 `json:"replicas,omitempty"`
	// Port is the TCP port the container listens on and the Service exposes.
	// Required, 1-65535.
	Port int32 `json:"port,omitempty"`
}

// AppStatus reflects the Deployment of the App.
type AppStatus struct {
	// ObservedGeneration is the generation of the App last reconciled.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// AvailableReplicas is the Deployment's number of available pods.
	AvailableReplicas int32 `json:"availableReplicas"`
	// Conditions holds Ready: True when every replica of the current spec is
	// available.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DeepCopyObject implements runtime.Object.
func (a *App) DeepCopyObject() runtime.Object {
	c := *a
	a.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	if a.Spec.Replicas != nil {
		r := *a.Spec.Replicas
		c.Spec.Replicas = &r
	}
	c.Status = a.Status.deepCopy()
	return &c
}

// deepCopy returns a copy of s that shares no memory with it.
func (s AppStatus) deepCopy() AppStatus {
	s.Conditions = append([]metav1.Condition(nil), s.Conditions...)
	return s
}

// AppList is a list of Apps.
type AppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []App `json:"items"`
}

// DeepCopyObject implements runtime.Object.
func (l *AppList) DeepCopyObject() runtime.Object {
	c := *l
	c.Items = make([]App, len(l.Items))
	for i := range l.Items {
		c.Items[i] = *l.Items[i].DeepCopyObject().(*App)
	}
	return &c
}

// addToScheme registers App and AppList.
func addToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &App{}, &AppList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
