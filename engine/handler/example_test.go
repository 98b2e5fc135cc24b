package handler_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/engine/handler"
	"github.com/wre-dev/wre/engine/queue"
	"github.com/wre-dev/wre/host/reconcile"
)

// printQueue prints what it is given instead of queueing it.
type printQueue struct{}

func (printQueue) AddWithPriority(req reconcile.Request, p queue.Priority) {
	fmt.Printf("%s at priority %d\n", req, p)
}

func ExampleForObject() {
	h := handler.ForObject(printQueue{}, handler.GenerationChanged())

	v1 := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: "1", Generation: 1}}
	h.OnAdd(v1, true) // from the initial list

	statusOnly := v1.DeepCopy()
	statusOnly.ResourceVersion = "2"
	h.OnUpdate(v1, statusOnly) // dropped by GenerationChanged

	h.OnUpdate(statusOnly, statusOnly) // a resync: dropped

	specChange := statusOnly.DeepCopy()
	specChange.ResourceVersion, specChange.Generation = "3", 2
	h.OnUpdate(statusOnly, specChange)
	// Output:
	// ns/web at priority -100
	// ns/web at priority 0
}

func ExampleForOwner() {
	owner := corev1.SchemeGroupVersion.WithKind("ConfigMap")
	h := handler.ForOwner(printQueue{}, owner, true)

	child := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "v1", Kind: "ConfigMap", Name: "settings", Controller: ptr.To(true)},
	}}}
	h.OnAdd(child, false)
	// Output:
	// ns/settings at priority 0
}
