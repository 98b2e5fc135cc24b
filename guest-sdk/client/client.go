package client

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Object is a Kubernetes object: it has metadata and a kind.
type Object interface {
	metav1.Object
	runtime.Object
}

// ObjectList is a list of Kubernetes objects, such as *corev1.ConfigMapList.
type ObjectList interface {
	metav1.ListInterface
	runtime.Object
}

// ObjectKey names an object: Namespace is empty for cluster-scoped objects.
type ObjectKey = types.NamespacedName

// ObjectKeyFromObject returns the key of obj.
func ObjectKeyFromObject(obj Object) ObjectKey {
	return ObjectKey{Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// Reader reads objects.
type Reader interface {
	// Get reads the object named by key into obj. Reads come from the host's
	// informer cache when it holds the resource; pass Live to ask the API server.
	Get(ctx context.Context, key ObjectKey, obj Object, opts ...GetOption) error
	// List reads the objects that match opts into list.
	List(ctx context.Context, list ObjectList, opts ...ListOption) error
}

// Writer creates, changes and deletes objects.
type Writer interface {
	// Create creates obj and replaces it with the object as created.
	Create(ctx context.Context, obj Object, opts ...CreateOption) error
	// Update replaces the object with obj; obj's resourceVersion is the
	// optimistic-concurrency precondition (a stale one yields a Conflict).
	Update(ctx context.Context, obj Object, opts ...UpdateOption) error
	// Patch applies patch to the object named by obj and replaces obj with the
	// result. Use MergeFrom, RawPatch or Apply (server-side apply).
	Patch(ctx context.Context, obj Object, patch Patch, opts ...PatchOption) error
	// Delete deletes the object named by obj.
	Delete(ctx context.Context, obj Object, opts ...DeleteOption) error
}

// StatusWriter writes the status subresource.
type StatusWriter interface {
	// Update replaces the status of the object with obj's status.
	Update(ctx context.Context, obj Object, opts ...UpdateOption) error
	// Patch applies patch to the status of the object named by obj.
	Patch(ctx context.Context, obj Object, patch Patch, opts ...PatchOption) error
}

// Client reads and writes objects through the wre host.
type Client interface {
	Reader
	Writer
	// Status returns a writer for the status subresource.
	Status() StatusWriter
	// Scheme returns the scheme that maps Go types to kinds.
	Scheme() *runtime.Scheme
}
