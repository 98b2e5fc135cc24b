package registry

import (
	"reflect"

	"k8s.io/client-go/tools/cache"

	"github.com/wre-dev/wre/engine/handler"
	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host/reconcile"
)

// controllerSpec is the controller of module m, reconciling through r, with
// the concurrency and timeouts m gets under limits. namespaced tells whether
// m.For is namespaced.
func controllerSpec(m *modules.Manifest, limits modules.Limits, r reconcile.Reconciler, namespaced bool) manager.ControllerSpec {
	opts := limits.Apply(m.ModuleOptions())
	spec := manager.ControllerSpec{
		Name:                    m.Name,
		Reconciler:              r,
		For:                     m.For.GVR(),
		MaxConcurrentReconciles: opts.Concurrency,
		// The host stops the guest at the module's timeout; the controller's
		// own timeout also covers creating an instance.
		ReconcileTimeout: opts.ReconcileTimeout + opts.InitTimeout,
	}
	for _, p := range m.Predicates {
		if p == modules.PredicateGenerationChanged {
			spec.Predicates = append(spec.Predicates, handler.GenerationChanged())
		}
	}
	for _, o := range m.Owns {
		spec.Owns = append(spec.Owns, o.GVR())
	}
	var ownerOpts []handler.Option
	if !namespaced {
		ownerOpts = append(ownerOpts, handler.OwnerClusterScoped())
	}
	for _, w := range m.Watches {
		watch := manager.Watch{Resource: w.GVR()}
		if w.MapTo == modules.MapToSameName {
			watch.Handler = func(q handler.Enqueuer) cache.ResourceEventHandler { return handler.ForObject(q) }
		} else {
			owner := m.For.GVK()
			watch.Handler = func(q handler.Enqueuer) cache.ResourceEventHandler {
				return handler.ForOwner(q, owner, false, ownerOpts...)
			}
		}
		spec.Watches = append(spec.Watches, watch)
	}
	return spec
}

// sameController reports whether a and b describe the same controller
// (resources, mappings, predicates, concurrency, timeouts), so that a new
// version can be swapped into the running one.
func sameController(a, b *modules.Manifest) bool {
	type shape struct {
		For        modules.Resource
		Owns       []modules.Resource
		Watches    []modules.Watch
		Predicates []string
		Workers    int
		Timeout    any
		Init       any
	}
	of := func(m *modules.Manifest) shape {
		return shape{m.For, m.Owns, m.Watches, m.Predicates, max(m.Concurrency, 1), m.ReconcileTimeout.Duration, m.InitTimeout.Duration}
	}
	return reflect.DeepEqual(of(a), of(b))
}
