// Package informers runs the engine's shared, reference-counted informer caches.
//
// A Registry holds at most one informer per resource (GroupVersionResource) for
// the whole engine; every controller that needs the resource shares it.
//
// Guarantees:
//   - Acquire starts the informer on the first reference and only counts further
//     references; Release stops it and frees its cache when the last reference
//     goes. Acquire and Release are safe for concurrent use.
//   - Built-in resources (those in client-go's kubernetes scheme) are cached as
//     typed k8s.io/api structs (for example *corev1.ConfigMap); every other
//     resource is cached as *unstructured.Unstructured. Cached objects carry their
//     apiVersion and kind.
//   - Resources are resolved through discovery; a resource that is not known yet
//     (a CRD installed after the engine started) triggers a discovery refresh.
//   - Caches are indexed by namespace, owner UID and label ("key=value"), so
//     ByOwner, namespaced lists and label-selected lists do not scan everything.
//   - List supports label selectors, field selectors on metadata.name and
//     metadata.namespace (anything else is a BadRequest), and limit/continue
//     pagination in a stable namespace/name order that neither skips nor repeats
//     an object that exists for the whole walk.
//   - Objects returned from the cache are shared with every reader and with the
//     informer itself: callers must not mutate them (DeepCopy first).
//   - Reads from an informer whose last reference was released fail with
//     ErrStopped instead of returning stale data.
package informers
