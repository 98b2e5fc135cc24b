package client

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/internal/patch"
)

// Patch describes a change to an object: its type and how to compute its body.
type Patch interface {
	// Type is the patch type, such as types.MergePatchType.
	Type() types.PatchType
	// Data returns the body of the patch for obj, whose apiVersion and kind the
	// client has set.
	Data(obj Object) ([]byte, error)
}

type rawPatch struct {
	typ  types.PatchType
	data []byte
}

// RawPatch is a patch whose body is given: a JSON patch, a JSON merge patch, a
// strategic merge patch (built-in types only) or an apply configuration.
func RawPatch(typ types.PatchType, data []byte) Patch { return rawPatch{typ: typ, data: data} }

func (p rawPatch) Type() types.PatchType       { return p.typ }
func (p rawPatch) Data(Object) ([]byte, error) { return p.data, nil }

type mergeFrom struct {
	from Object
	lock bool
}

// MergeFrom is a JSON merge patch from original to the object being patched:
// take a DeepCopy, change the object, then Patch(ctx, obj, MergeFrom(copy)).
// Fields removed from the object are set to null; lists are replaced whole.
func MergeFrom(original Object) Patch { return mergeFrom{from: original} }

// MergeFromWithOptimisticLock is MergeFrom plus the original's resourceVersion,
// so the patch fails with a Conflict when the object changed meanwhile.
func MergeFromWithOptimisticLock(original Object) Patch {
	return mergeFrom{from: original, lock: true}
}

func (p mergeFrom) Type() types.PatchType { return types.MergePatchType }

func (p mergeFrom) Data(obj Object) ([]byte, error) {
	from, err := toMap(p.from)
	if err != nil {
		return nil, err
	}
	to, err := toMap(obj)
	if err != nil {
		return nil, err
	}
	d := patch.CreateMerge(from, to)
	if p.lock {
		md, _ := d["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
			d["metadata"] = md
		}
		md["resourceVersion"] = p.from.GetResourceVersion()
	}
	return json.Marshal(d)
}

// toMap encodes obj as JSON and decodes it into a generic map.
func toMap(obj Object) (map[string]any, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode %T: %w", obj, err)
	}
	return m, nil
}

type applyPatch struct{}

// Apply is a server-side apply of the object itself: the object states the
// fields the module wants to own, apiVersion and kind included (the client sets
// them). Fields left at their zero value and marked omitempty are not claimed.
// Combine with ForceOwnership to take fields over from other managers.
// Built-in types are sent as protobuf, which the host converts to the JSON
// apply configuration; Data is the JSON form used for the others.
var Apply Patch = applyPatch{}

func (applyPatch) Type() types.PatchType { return types.ApplyPatchType }

func (applyPatch) Data(obj Object) ([]byte, error) {
	// The API server refuses an apply configuration that carries managedFields.
	mf := obj.GetManagedFields()
	obj.SetManagedFields(nil)
	defer obj.SetManagedFields(mf)
	return json.Marshal(obj)
}
