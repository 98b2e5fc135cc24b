package guest

import (
	"encoding/json"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// protoObject is implemented by the generated code of every k8s.io/api type.
type protoObject interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
	Reset()
}

// ContentType returns the content type obj travels in.
func ContentType(obj runtime.Object) string {
	if _, ok := obj.(protoObject); ok {
		return abi.ContentTypeProtobuf
	}
	return abi.ContentTypeJSON
}

// Encode sets obj's apiVersion and kind to gvk and encodes it in its content
// type.
func Encode(obj runtime.Object, gvk schema.GroupVersionKind) (contentType string, body []byte, err error) {
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	if p, ok := obj.(protoObject); ok {
		body, err = p.Marshal()
		contentType = abi.ContentTypeProtobuf
	} else {
		body, err = json.Marshal(obj)
		contentType = abi.ContentTypeJSON
	}
	if err != nil {
		return "", nil, fmt.Errorf("encode %s: %w", gvk.Kind, err)
	}
	return contentType, body, nil
}

// Decode replaces obj by the object encoded in body and sets its apiVersion and
// kind to gvk (protobuf bodies do not carry them).
func Decode(contentType string, body []byte, obj runtime.Object, gvk schema.GroupVersionKind) error {
	switch contentType {
	case abi.ContentTypeProtobuf:
		p, ok := obj.(protoObject)
		if !ok {
			return fmt.Errorf("decode %s: %T has no protobuf encoding", gvk.Kind, obj)
		}
		p.Reset()
		if err := p.Unmarshal(body); err != nil {
			return fmt.Errorf("decode %s: %w", gvk.Kind, err)
		}
	case abi.ContentTypeJSON:
		// json.Unmarshal merges into maps and slices; start from the zero value.
		reflect.ValueOf(obj).Elem().SetZero()
		if err := json.Unmarshal(body, obj); err != nil {
			return fmt.Errorf("decode %s: %w", gvk.Kind, err)
		}
	default:
		return fmt.Errorf("decode %s: unsupported content type %q", gvk.Kind, contentType)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}
