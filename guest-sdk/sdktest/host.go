package sdktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/internal/guest"
)

type objectKey struct {
	group, resource, namespace, name string
}

// call answers one encoded request; module tells the module's calls from the
// test's own.
func (e *Env) call(op abi.Op, raw []byte, module bool) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	var req abi.Request
	var resp *abi.Response
	if err := req.Unmarshal(raw); err != nil {
		resp = errorResponse(apierrors.NewBadRequest(err.Error()))
	} else {
		resp = e.serve(op, &req, module)
	}
	if module {
		e.actions = append(e.actions, Action{
			Op: op, Group: req.Group, Resource: req.Resource, Namespace: req.Namespace, Name: req.Name,
			PatchType: req.PatchType, Body: req.Body, ContentType: req.ContentType, Code: resp.Code,
		})
	}
	return resp.Marshal()
}

func (e *Env) serve(op abi.Op, req *abi.Request, module bool) *abi.Response {
	if module {
		for i, f := range e.faults {
			if f.op == op && (f.resource == "" || f.resource == req.Resource) {
				e.faults = append(e.faults[:i], e.faults[i+1:]...)
				return errorResponse(f.err)
			}
		}
	}
	w := &write{env: e, req: req, external: !module}
	var (
		obj *unstructured.Unstructured
		err error
	)
	switch op {
	case abi.OpGet:
		obj, err = e.get(req)
	case abi.OpList:
		return e.list(req)
	case abi.OpCreate:
		obj, err = w.create()
	case abi.OpUpdate, abi.OpStatusUpdate:
		obj, err = w.update(op == abi.OpStatusUpdate)
	case abi.OpPatch, abi.OpStatusPatch:
		obj, err = w.patch(op == abi.OpStatusPatch)
	case abi.OpDelete:
		err = w.delete()
	case abi.OpEvent:
		err = e.event(req)
	case abi.OpConfig:
		return &abi.Response{Status: abi.Status{Code: http.StatusOK}, ContentType: abi.ContentTypeJSON, Body: e.config}
	default:
		err = apierrors.NewBadRequest(fmt.Sprintf("unknown op %d", op))
	}
	if err != nil {
		return errorResponse(err)
	}
	resp := &abi.Response{Status: abi.Status{Code: http.StatusOK}}
	if op == abi.OpCreate {
		resp.Code = http.StatusCreated
	}
	if obj != nil {
		if resp.ContentType, resp.Body, err = e.encode(obj, req.Accept); err != nil {
			return errorResponse(err)
		}
	}
	return resp
}

// errorResponse turns an error into the status the real host would send.
func errorResponse(err error) *abi.Response {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		st = apierrors.NewInternalError(err)
	}
	s := st.Status()
	r := &abi.Response{Status: abi.Status{Code: s.Code, Reason: string(s.Reason), Message: s.Message}}
	if d := s.Details; d != nil {
		r.Group, r.Kind, r.Name = d.Group, d.Kind, d.Name
	}
	return r
}

func keyOf(req *abi.Request, ns, name string) objectKey {
	return objectKey{group: req.Group, resource: req.Resource, namespace: ns, name: name}
}

func gvkOf(req *abi.Request) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: req.Group, Version: req.Version, Kind: req.Kind}
}

func notFound(req *abi.Request, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Group: req.Group, Resource: req.Resource}, name)
}

func (e *Env) get(req *abi.Request) (*unstructured.Unstructured, error) {
	if req.Name == "" {
		return nil, apierrors.NewBadRequest("get without a name")
	}
	obj, ok := e.objects[keyOf(req, req.Namespace, req.Name)]
	if !ok {
		return nil, notFound(req, req.Name)
	}
	return obj.DeepCopy(), nil
}

// list serves a list with selectors and offset-based continue tokens.
func (e *Env) list(req *abi.Request) *abi.Response {
	ls, err := labels.Parse(req.LabelSelector)
	if err != nil {
		return errorResponse(apierrors.NewBadRequest(err.Error()))
	}
	fs, err := fields.ParseSelector(req.FieldSelector)
	if err != nil {
		return errorResponse(apierrors.NewBadRequest(err.Error()))
	}
	for _, r := range fs.Requirements() {
		if r.Field != "metadata.name" && r.Field != "metadata.namespace" {
			return errorResponse(apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field)))
		}
	}
	var match []*unstructured.Unstructured
	for k, o := range e.objects {
		if k.group != req.Group || k.resource != req.Resource || (req.Namespace != "" && k.namespace != req.Namespace) {
			continue
		}
		if ls.Matches(labels.Set(o.GetLabels())) && fs.Matches(fields.Set{"metadata.name": k.name, "metadata.namespace": k.namespace}) {
			match = append(match, o)
		}
	}
	sort.Slice(match, func(i, j int) bool {
		a, b := match[i], match[j]
		return a.GetNamespace() < b.GetNamespace() || a.GetNamespace() == b.GetNamespace() && a.GetName() < b.GetName()
	})
	start := 0
	if req.Continue != "" {
		if start, err = strconv.Atoi(req.Continue); err != nil || start < 0 || start > len(match) {
			return errorResponse(apierrors.NewBadRequest("invalid continue token"))
		}
	}
	end := len(match)
	resp := &abi.Response{Status: abi.Status{Code: http.StatusOK}, ResourceVersion: strconv.FormatInt(e.rv, 10)}
	if req.Limit > 0 && int64(end-start) > req.Limit {
		end = start + int(req.Limit)
		resp.Continue = strconv.Itoa(end)
	}
	resp.Items = [][]byte{}
	for _, o := range match[start:end] {
		ct, b, err := e.encode(o, req.Accept)
		if err != nil {
			return errorResponse(err)
		}
		resp.ContentType = ct
		resp.Items = append(resp.Items, b)
	}
	return resp
}

func (e *Env) event(req *abi.Request) error {
	ns, name := req.Namespace, req.Name
	if name == "" {
		ns, name = e.current.Namespace, e.current.Name
	}
	if _, ok := e.objects[keyOf(req, ns, name)]; !ok {
		return notFound(req, name)
	}
	e.events = append(e.events, Event{
		Resource: req.Resource, Namespace: ns, Name: name,
		Type: req.EventType, Reason: req.EventReason, Message: req.EventMessage,
	})
	return nil
}

// typed returns a new object of kind gvk: the scheme's Go type, or an
// unstructured object for kinds the scheme does not know.
func (e *Env) typed(gvk schema.GroupVersionKind) runtime.Object {
	if o, err := e.scheme.New(gvk); err == nil {
		return o
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

// toTyped converts a stored object into its Go type.
func (e *Env) toTyped(u *unstructured.Unstructured) (runtime.Object, error) {
	obj := e.typed(u.GroupVersionKind())
	if _, ok := obj.(*unstructured.Unstructured); ok {
		return u.DeepCopy(), nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s %q: %v", u.GetKind(), u.GetName(), err))
	}
	obj.GetObjectKind().SetGroupVersionKind(u.GroupVersionKind())
	return obj, nil
}

// toStored converts a Go object into the stored form.
func toStored(obj runtime.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u = u.DeepCopy()
		u.SetGroupVersionKind(gvk)
		return u, nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// normalize round-trips u through its Go type, dropping unknown fields and
// rejecting fields of the wrong type, as the API server's decoding does.
func (e *Env) normalize(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	obj, err := e.toTyped(u)
	if err != nil {
		return nil, err
	}
	return toStored(obj, u.GroupVersionKind())
}

// decodeBody decodes the object in a create or update request.
func (e *Env) decodeBody(req *abi.Request) (*unstructured.Unstructured, error) {
	gvk := gvkOf(req)
	obj := e.typed(gvk)
	switch req.ContentType {
	case abi.ContentTypeJSON, abi.ContentTypeProtobuf:
	default:
		return nil, unsupportedMedia(req.ContentType)
	}
	if req.ContentType == abi.ContentTypeProtobuf && guest.ContentType(obj) != abi.ContentTypeProtobuf {
		return nil, unsupportedMedia(req.ContentType + " for " + gvk.Kind)
	}
	if err := guest.Decode(req.ContentType, req.Body, obj, gvk); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return toStored(obj, gvk)
}

// encode encodes a stored object for a response in the accepted content type.
func (e *Env) encode(u *unstructured.Unstructured, accept string) (string, []byte, error) {
	obj, err := e.toTyped(u)
	if err != nil {
		return "", nil, err
	}
	switch accept {
	case "", abi.ContentTypeProtobuf:
		ct, b, err := guest.Encode(obj, u.GroupVersionKind())
		if err != nil {
			return "", nil, apierrors.NewInternalError(err)
		}
		return ct, b, nil
	case abi.ContentTypeJSON:
		b, err := json.Marshal(obj)
		if err != nil {
			return "", nil, apierrors.NewInternalError(err)
		}
		return abi.ContentTypeJSON, b, nil
	default:
		return "", nil, unsupportedMedia(accept)
	}
}

func unsupportedMedia(what string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType,
		Reason: metav1.StatusReasonUnsupportedMediaType, Message: "unsupported content type " + what,
	}}
}

// specChanged reports whether anything but metadata and status differs.
func specChanged(a, b *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		m := map[string]any{}
		for k, v := range u.Object {
			if k != "metadata" && k != "status" {
				m[k] = v
			}
		}
		return m
	}
	return !reflect.DeepEqual(strip(a), strip(b))
}
