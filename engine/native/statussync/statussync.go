package statussync

import (
	"context"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/wre-dev/wre/engine/informers"
	"github.com/wre-dev/wre/host/reconcile"
)

// GVR is the Widget resource.
var GVR = schema.GroupVersionResource{Group: "demo.wre.dev", Version: "v1", Resource: "widgets"}

// Getter reads Widgets, typically from an engine informer's cache
// (*informers.Informer).
type Getter interface {
	Get(namespace, name string) (runtime.Object, error)
}

// Reconciler sets status.current to spec.desired on every Widget.
type Reconciler struct {
	cache  Getter
	client dynamic.Interface
}

// New returns a Reconciler reading from cache and writing through client.
func New(cache Getter, client dynamic.Interface) *Reconciler {
	return &Reconciler{cache: cache, client: client}
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// Reconcile converges one Widget.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj, err := r.cache.Get(req.Namespace, req.Name)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get widget %s: %w", req, err)
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("widget %s: unexpected type %T", req, obj))
	}
	desired, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "desired")
	current, _, _ := unstructured.NestedFieldNoCopy(u.Object, "status", "current")
	if equality.Semantic.DeepEqual(desired, current) {
		return reconcile.Result{}, nil
	}
	u = u.DeepCopy() // the cached object is shared
	if err := unstructured.SetNestedField(u.Object, runtime.DeepCopyJSONValue(desired), "status", "current"); err != nil {
		return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("widget %s: set status.current: %w", req, err))
	}
	if _, err := r.client.Resource(GVR).Namespace(req.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: "wre-statussync"}); err != nil {
		// NotFound: deleted meanwhile; the delete event ends the story.
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		// Conflict included: the cache was stale, retry once it caught up.
		return reconcile.Result{}, fmt.Errorf("update widget %s status: %w", req, err)
	}
	return reconcile.Result{}, nil
}

// CRD returns the Widget CustomResourceDefinition: spec.desired and
// status.current are strings, status.observedGeneration an integer (the
// fields of modules/status-sync/crd.yaml, so the wasm module can run on the
// same test bed), status is a subresource.
func CRD() *apiextensionsv1.CustomResourceDefinition {
	str := apiextensionsv1.JSONSchemaProps{Type: "string"}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: GVR.Resource + "." + GVR.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: GVR.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: GVR.Resource, Singular: "widget", Kind: "Widget", ListKind: "WidgetList",
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: GVR.Version, Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"desired": str}},
						"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"current": str, "observedGeneration": {Type: "integer", Format: "int64"},
						}},
					},
				}},
			}},
		},
	}
}

// Widget returns a Widget object named namespace/name with spec.desired set.
func Widget(namespace, name, desired string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(GVR.GroupVersion().String())
	u.SetKind("Widget")
	u.SetNamespace(namespace)
	u.SetName(name)
	_ = unstructured.SetNestedField(u.Object, desired, "spec", "desired")
	return u
}

// Lookuper finds a running shared informer; *informers.Registry is one.
type Lookuper interface {
	Lookup(gvr schema.GroupVersionResource) (*informers.Informer, bool)
}

// FromRegistry returns a Getter that reads Widgets from the registry's Widget
// informer, which the manager acquires for the controller whose For is GVR.
func FromRegistry(reg Lookuper) Getter { return registryGetter{reg} }

type registryGetter struct{ reg Lookuper }

func (g registryGetter) Get(namespace, name string) (runtime.Object, error) {
	inf, ok := g.reg.Lookup(GVR)
	if !ok {
		return nil, fmt.Errorf("no informer for %s: %w", GVR, informers.ErrStopped)
	}
	return inf.Get(namespace, name)
}
