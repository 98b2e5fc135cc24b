package sdktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/internal/guest"
	"github.com/wre-dev/wre/guest-sdk/internal/patch"
)

// write is one create, update, patch or delete; external writes come from the
// test itself and keep the status (and deletionTimestamp) they are given.
type write struct {
	env      *Env
	req      *abi.Request
	external bool
	// applied is set once a server-side apply computed the managed fields.
	applied bool
}

// manager is the field manager of the write.
func (w *write) manager() string {
	if w.external {
		return TestFieldManager
	}
	return ModuleFieldManager
}

func (w *write) gr() schema.GroupResource {
	return schema.GroupResource{Group: w.req.Group, Resource: w.req.Resource}
}

func (w *write) conflict(name, why string) error {
	return apierrors.NewConflict(w.gr(), name, fmt.Errorf("%s", why))
}

// locate returns the key of obj, defaulting its namespace to the request's and
// refusing a body that names another object than the request.
func (w *write) locate(obj *unstructured.Unstructured) (objectKey, error) {
	switch ns := obj.GetNamespace(); {
	case ns == "":
		obj.SetNamespace(w.req.Namespace)
	case w.req.Namespace != "" && ns != w.req.Namespace:
		return objectKey{}, apierrors.NewBadRequest(fmt.Sprintf("namespace %q of the body does not match the request's %q", ns, w.req.Namespace))
	}
	if w.req.Name != "" && obj.GetName() != w.req.Name {
		return objectKey{}, apierrors.NewBadRequest(fmt.Sprintf("name %q of the body does not match the request's %q", obj.GetName(), w.req.Name))
	}
	return keyOf(w.req, obj.GetNamespace(), obj.GetName()), nil
}

func (w *write) create() (*unstructured.Unstructured, error) {
	obj, err := w.env.decodeBody(w.req)
	if err != nil {
		return nil, err
	}
	return w.createObject(obj)
}

func (w *write) createObject(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	e := w.env
	if obj.GetName() == "" && obj.GetGenerateName() != "" {
		obj.SetName(fmt.Sprintf("%s%05d", obj.GetGenerateName(), e.rv+1))
	}
	if obj.GetName() == "" {
		return nil, apierrors.NewBadRequest("name or generateName is required")
	}
	key, err := w.locate(obj)
	if err != nil {
		return nil, err
	}
	if _, ok := e.objects[key]; ok {
		return nil, apierrors.NewAlreadyExists(w.gr(), obj.GetName())
	}
	if !w.external {
		unstructured.RemoveNestedField(obj.Object, "status")
		obj.SetDeletionTimestamp(nil)
		obj.SetGeneration(0)
	}
	if obj.GetGeneration() == 0 {
		obj.SetGeneration(1)
	}
	if obj.GetUID() == "" || !w.external {
		obj.SetUID(types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", e.rv+1)))
	}
	obj.SetCreationTimestamp(metav1.NewTime(e.now().UTC().Truncate(1e9)))
	if !w.applied {
		empty := &unstructured.Unstructured{}
		empty.SetGroupVersionKind(obj.GroupVersionKind())
		if obj, err = w.track(empty, obj); err != nil {
			return nil, err
		}
	}
	return w.store(key, obj)
}

func (w *write) update(status bool) (*unstructured.Unstructured, error) {
	obj, err := w.env.decodeBody(w.req)
	if err != nil {
		return nil, err
	}
	return w.replace(obj, status)
}

// replace stores obj over the existing object: all of it but status, or only
// its status.
func (w *write) replace(obj *unstructured.Unstructured, status bool) (*unstructured.Unstructured, error) {
	key, err := w.locate(obj)
	if err != nil {
		return nil, err
	}
	old, ok := w.env.objects[key]
	if !ok {
		return nil, notFound(w.req, obj.GetName())
	}
	if rv := obj.GetResourceVersion(); rv != "" && rv != old.GetResourceVersion() {
		return nil, w.conflict(obj.GetName(), "the object has been modified; please apply your changes to the latest version and try again")
	}
	// Compare normalized objects: a body may spell empty fields differently.
	next, err := w.env.normalize(obj)
	if err != nil {
		return nil, err
	}
	if status {
		next = old.DeepCopy()
		copyStatus(next, obj)
	} else {
		if !w.external {
			copyStatus(next, old)
		}
		if !w.applied {
			if next, err = w.track(old, next); err != nil {
				return nil, err
			}
		}
		next.SetUID(old.GetUID())
		next.SetCreationTimestamp(old.GetCreationTimestamp())
		next.SetDeletionTimestamp(old.GetDeletionTimestamp())
		next.SetGeneration(old.GetGeneration())
		if specChanged(old, next) {
			next.SetGeneration(old.GetGeneration() + 1)
		}
	}
	return w.store(key, next)
}

// copyStatus replaces the status of dst by that of src.
func copyStatus(dst, src *unstructured.Unstructured) {
	if st, ok := src.Object["status"]; ok {
		dst.Object["status"] = st
	} else {
		delete(dst.Object, "status")
	}
}

// store normalizes obj, gives it the next resourceVersion and stores it (unless
// dry run); an object being deleted whose last finalizer went is removed.
func (w *write) store(key objectKey, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	e := w.env
	obj, err := e.normalize(obj)
	if err != nil || w.req.DryRun {
		return obj, err
	}
	e.rv++
	obj.SetResourceVersion(strconv.FormatInt(e.rv, 10))
	e.objects[key] = obj.DeepCopy()
	if obj.GetDeletionTimestamp() != nil && len(obj.GetFinalizers()) == 0 {
		e.remove(key, metav1.DeletePropagationBackground)
	}
	return obj, nil
}

func (w *write) patch(status bool) (*unstructured.Unstructured, error) {
	req, e := w.req, w.env
	if req.Name == "" {
		return nil, apierrors.NewBadRequest("patch without a name")
	}
	old, ok := e.objects[keyOf(req, req.Namespace, req.Name)]
	if !ok {
		if req.PatchType != abi.PatchApply || status {
			return nil, notFound(req, req.Name)
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(gvkOf(req))
		live.SetNamespace(req.Namespace)
		live.SetName(req.Name)
		obj, err := w.serverSideApply(live)
		if err != nil {
			return nil, err
		}
		return w.createObject(obj)
	}
	patched, err := w.applyPatch(old)
	if err != nil {
		return nil, err
	}
	if rv := patched.GetResourceVersion(); rv != "" && rv != old.GetResourceVersion() {
		return nil, w.conflict(req.Name, "the object has been modified; please apply your changes to the latest version and try again")
	}
	patched.SetResourceVersion(old.GetResourceVersion())
	return w.replace(patched, status)
}

// applyPatch returns old with the request's patch applied.
func (w *write) applyPatch(old *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	e, req := w.env, w.req
	if req.PatchType == abi.PatchApply {
		return w.serverSideApply(old)
	}
	builtin := guest.ContentType(e.typed(old.GroupVersionKind())) == abi.ContentTypeProtobuf
	// Patches decode numbers as float64; so must the object, or merge keys and
	// test values of 80 and 80.0 would differ.
	raw, err := old.MarshalJSON()
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var orig map[string]any
	if err := json.Unmarshal(raw, &orig); err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	var doc any
	switch req.PatchType {
	case abi.PatchMerge:
		var p any
		if err := json.Unmarshal(req.Body, &p); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		doc = patch.ApplyMerge(orig, p)
	case abi.PatchJSON:
		var ops []any
		if err := json.Unmarshal(req.Body, &ops); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if doc, err = patch.ApplyJSON(orig, ops); err != nil {
			return nil, invalid(err)
		}
	case abi.PatchStrategicMerge:
		if !builtin {
			return nil, unsupportedMedia(req.PatchType + " for " + old.GetKind())
		}
		p, err := decodeJSONObject(req.Body)
		if err != nil {
			return nil, err
		}
		m, err := strategicpatch.StrategicMergeMapPatch(orig, p.Object, e.typed(old.GroupVersionKind()))
		if err != nil {
			return nil, invalid(err)
		}
		doc = map[string]any(m)
	default:
		return nil, unsupportedMedia(req.PatchType)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, invalid(fmt.Errorf("patch result is not an object"))
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func decodeJSONObject(b []byte) (*unstructured.Unstructured, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func invalid(err error) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity,
		Reason: metav1.StatusReasonInvalid, Message: err.Error(),
	}}
}

func (w *write) delete() error {
	req, e := w.req, w.env
	key := keyOf(req, req.Namespace, req.Name)
	old, ok := e.objects[key]
	if !ok {
		return notFound(req, req.Name)
	}
	if uid := req.PreconditionUID; uid != "" && types.UID(uid) != old.GetUID() {
		return w.conflict(req.Name, fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, old.GetUID()))
	}
	if rv := req.PreconditionResourceVersion; rv != "" && rv != old.GetResourceVersion() {
		return w.conflict(req.Name, fmt.Sprintf("Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s", rv, old.GetResourceVersion()))
	}
	if req.DryRun {
		return nil
	}
	e.deleteObject(key, metav1.DeletionPropagation(req.PropagationPolicy))
	return nil
}

// deleteObject marks an object with finalizers as being deleted, and removes
// one without.
func (e *Env) deleteObject(key objectKey, policy metav1.DeletionPropagation) {
	obj := e.objects[key]
	if len(obj.GetFinalizers()) == 0 {
		e.remove(key, policy)
		return
	}
	if obj.GetDeletionTimestamp() == nil {
		now := metav1.NewTime(e.now().UTC().Truncate(1e9))
		obj.SetDeletionTimestamp(&now)
		e.rv++
		obj.SetResourceVersion(strconv.FormatInt(e.rv, 10))
	}
}

// remove removes an object and, like the garbage collector, deletes the
// dependents it was the last existing owner of, or orphans them.
func (e *Env) remove(key objectKey, policy metav1.DeletionPropagation) {
	uid := e.objects[key].GetUID()
	delete(e.objects, key)
	exists := map[types.UID]bool{}
	for _, o := range e.objects {
		exists[o.GetUID()] = true
	}
	var dependents []objectKey
	for k, o := range e.objects {
		refs := o.GetOwnerReferences()
		owned, orphan := false, true
		kept := refs[:0:0]
		for _, r := range refs {
			if r.UID == uid {
				owned = true
				continue
			}
			kept = append(kept, r)
			orphan = orphan && !exists[r.UID]
		}
		switch {
		case !owned:
		case policy == metav1.DeletePropagationOrphan:
			o.SetOwnerReferences(kept)
		case orphan:
			dependents = append(dependents, k)
		}
	}
	for _, k := range dependents {
		if _, ok := e.objects[k]; ok {
			e.deleteObject(k, metav1.DeletePropagationBackground)
		}
	}
}
