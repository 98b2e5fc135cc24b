package sdktest

import (
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/internal/guest"
)

const (
	// ModuleFieldManager is the field manager of the module's writes (the real
	// host uses the module's name).
	ModuleFieldManager = "module"
	// TestFieldManager is the field manager of writes made through Env.Client.
	TestFieldManager = "sdktest"
)

// fieldManager returns the field manager of kind gvk, or nil for kinds the
// scheme does not know. Field sets are deduced from the objects: every list is
// atomic, as for custom resources without a schema.
func (e *Env) fieldManager(gvk schema.GroupVersionKind) (*managedfields.FieldManager, error) {
	if fm, ok := e.fieldManagers[gvk]; ok {
		return fm, nil
	}
	if !e.scheme.Recognizes(gvk) {
		return nil, nil
	}
	fm, err := managedfields.NewDefaultFieldManager(managedfields.NewDeducedTypeConverter(),
		e.scheme, e.scheme, e.scheme, gvk, gvk.GroupVersion(), "", nil)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	e.fieldManagers[gvk] = fm
	return fm, nil
}

// serverSideApply merges the apply configuration of the request into live
// (an empty object when there is none yet) with the field manager of the
// kind: fields the manager applied before and left out now are removed, and
// fields another manager owns are a Conflict unless the apply forces.
func (w *write) serverSideApply(live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := live.GroupVersionKind()
	fm, err := w.env.fieldManager(gvk)
	if err != nil {
		return nil, err
	}
	if fm == nil {
		return nil, unsupportedMedia(fmt.Sprintf("%s for %s, which the module's scheme does not know", w.req.PatchType, gvk.Kind))
	}
	applied, err := w.applyConfiguration(gvk)
	if err != nil {
		return nil, err
	}
	if got := applied.GetObjectKind().GroupVersionKind(); got != gvk {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("apply configuration of kind %v, want %v", got, gvk))
	}
	liveTyped, err := w.env.toTyped(live)
	if err != nil {
		return nil, err
	}
	out, err := fm.Apply(liveTyped, applied, w.manager(), w.req.Force)
	if err != nil {
		return nil, asAPIError(err)
	}
	w.applied = true
	return toStored(out, gvk)
}

// applyConfiguration decodes the apply configuration of the request: a
// protobuf object (which the real host converts to JSON), or JSON or YAML.
func (w *write) applyConfiguration(gvk schema.GroupVersionKind) (runtime.Object, error) {
	applied := w.env.typed(gvk)
	if w.req.ContentType == abi.ContentTypeProtobuf {
		if guest.ContentType(applied) != abi.ContentTypeProtobuf {
			return nil, unsupportedMedia(w.req.ContentType + " for " + gvk.Kind)
		}
		if err := guest.Decode(w.req.ContentType, w.req.Body, applied, gvk); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return applied, nil
	}
	body, err := yaml.ToJSON(w.req.Body)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if err := json.Unmarshal(body, applied); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return applied, nil
}

// track records in next's managed fields what the write changed from live,
// as the API server does for every write that is not an apply.
func (w *write) track(live, next *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := next.GroupVersionKind()
	fm, err := w.env.fieldManager(gvk)
	if fm == nil || err != nil {
		return next, err
	}
	liveTyped, err := w.env.toTyped(live)
	if err != nil {
		return nil, err
	}
	nextTyped, err := w.env.toTyped(next)
	if err != nil {
		return nil, err
	}
	out, err := fm.Update(liveTyped, nextTyped, w.manager())
	if err != nil {
		return nil, asAPIError(err)
	}
	return toStored(out, gvk)
}

// asAPIError keeps API errors (such as apply conflicts) and makes others
// Invalid.
func asAPIError(err error) error {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return err
	}
	return invalid(err)
}
