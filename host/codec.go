package host

import (
	"encoding/json"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// protoMessage is implemented by every k8s.io/api type through its generated code.
type protoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// codec converts objects between their wire form (docs/abi.md §3.6) and the
// forms the cache and the dynamic client use. Built-in types are the external
// kinds the client-go scheme knows.
type codec struct{ scheme *runtime.Scheme }

var defaultCodec = codec{scheme: clientscheme.Scheme}

// builtin reports whether gvk travels as protobuf. The scheme also recognizes
// internal versions ("<group>/__internal", e.g. WatchEvent), which have no
// generated Marshal and never appear on the wire.
func (c codec) builtin(gvk schema.GroupVersionKind) bool {
	return gvk.Version != runtime.APIVersionInternal && c.scheme.Recognizes(gvk)
}

// newTyped returns a new generated k8s.io/api object of gvk, or 415 when gvk
// has none with generated protobuf code.
func (c codec) newTyped(gvk schema.GroupVersionKind) (runtime.Object, protoMessage, error) {
	if c.builtin(gvk) {
		if obj, err := c.scheme.New(gvk); err == nil {
			if pm, ok := obj.(protoMessage); ok {
				return obj, pm, nil
			}
		}
	}
	return nil, nil, unsupportedMediaType(fmt.Sprintf("%s for %s", abi.ContentTypeProtobuf, gvk))
}

// encode turns obj (typed or unstructured) into the wire form accept asks for;
// an empty accept picks protobuf for built-in types and JSON otherwise.
func (c codec) encode(obj runtime.Object, gvk schema.GroupVersionKind, accept string) (contentType string, data []byte, err error) {
	if accept == "" {
		accept = abi.ContentTypeJSON
		if c.builtin(gvk) {
			accept = abi.ContentTypeProtobuf
		}
	}
	switch accept {
	case abi.ContentTypeProtobuf:
		typed, err := c.typed(obj, gvk)
		if err != nil {
			return "", nil, err
		}
		data, err = typed.Marshal()
		return accept, data, err
	case abi.ContentTypeJSON:
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				return "", nil, err
			}
			u = &unstructured.Unstructured{Object: m}
		}
		if u.GetKind() == "" {
			u = u.DeepCopy()
			u.SetGroupVersionKind(gvk)
		}
		data, err = json.Marshal(u.Object)
		return accept, data, err
	default:
		return "", nil, unsupportedMediaType(accept)
	}
}

// typed returns obj as the generated k8s.io/api type of gvk.
func (c codec) typed(obj runtime.Object, gvk schema.GroupVersionKind) (protoMessage, error) {
	if pm, ok := obj.(protoMessage); ok {
		return pm, nil
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, unsupportedMediaType(fmt.Sprintf("%s for %s", abi.ContentTypeProtobuf, gvk))
	}
	typed, pm, err := c.newTyped(gvk)
	if err != nil {
		return nil, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
		return nil, err
	}
	return pm, nil
}

// decode turns a wire body into an unstructured object of gvk. A JSON body
// without apiVersion/kind gets gvk; one naming another kind is invalid.
func (c codec) decode(contentType string, data []byte, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	var m map[string]any
	switch contentType {
	case abi.ContentTypeJSON, "":
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("decode JSON body: %v", err))
		}
		if m == nil {
			return nil, apierrors.NewBadRequest("body is not a JSON object")
		}
	case abi.ContentTypeProtobuf:
		typed, pm, err := c.newTyped(gvk)
		if err != nil {
			return nil, err
		}
		if err := pm.Unmarshal(data); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("decode protobuf %s: %v", gvk.Kind, err))
		}
		if m, err = runtime.DefaultUnstructuredConverter.ToUnstructured(typed); err != nil {
			return nil, err
		}
	default:
		return nil, unsupportedMediaType(contentType)
	}
	u := &unstructured.Unstructured{Object: m}
	if got := u.GroupVersionKind(); got.Kind != "" && got != gvk {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("body is a %s, request names %s", got, gvk))
	}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

func unsupportedMediaType(what string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnsupportedMediaType,
		Reason:  metav1.StatusReasonUnsupportedMediaType,
		Message: "unsupported content type " + what,
	}}
}
