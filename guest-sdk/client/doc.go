// Package client is the API a wre module uses to read and write Kubernetes
// objects. It is shaped like controller-runtime's client.Client, so reconcile
// code reads the same, but every call is served by the wre host through the
// host-function ABI instead of an HTTP connection.
//
// Guarantees:
//   - Built-in k8s.io/api types travel as Kubernetes protobuf (their generated
//     Marshal/Unmarshal, no reflection); every other type, including a module's
//     own custom resource types and *unstructured.Unstructured, travels as JSON.
//   - A failed call returns a *apierrors.StatusError rebuilt from the host's
//     status, so apierrors.IsNotFound, IsConflict, IsForbidden … work as usual.
//   - On success the object passed in is replaced by the one the host returns
//     (resourceVersion, generation and defaults included); on failure it is left
//     as it was.
//   - Group/Version/Kind come from the module's runtime.Scheme; the resource is
//     the lower-case plural of the kind (see Mapper), which a module can override.
//   - The field manager of writes is the module's name; the host sets it.
package client
