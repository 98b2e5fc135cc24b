// Command getbench2 is the ABI v2 (lean SDK) counterpart of getbench: the
// namespace of the reconciled request names the operation, every object
// lives in namespace "bench", and objects travel projected to the fields a
// typical reconciler reads:
//
//   - "noop": no host call (the primary ConfigMap is looked up by the host
//     and not found);
//   - "get": get the Deployment;
//   - "get-cr": get the Gizmo custom resource;
//   - "list": list the ConfigMaps labelled bench=list;
//   - "apply": get the Deployment and apply its declared fields unchanged.
package main

import (
	"context"
	"errors"

	"github.com/wre-dev/wre/guest-sdk/lean"
)

// Primary is the harness's primary resource (ConfigMaps), read for its
// metadata only.
//
// +wre:resource version=v1 resource=configmaps kind=ConfigMap
type Primary struct {
	lean.Meta
}

// Deployment is what a typical operator reads of a Deployment.
//
// +wre:resource group=apps version=v1 resource=deployments kind=Deployment
type Deployment struct {
	lean.Meta
	Labels             lean.Map `wre:"metadata.labels"`
	Annotations        lean.Map `wre:"metadata.annotations"`
	Replicas           int32    `wre:"spec.replicas"`
	ReadyReplicas      int32    `wre:"status.readyReplicas"`
	AvailableReplicas  int32    `wre:"status.availableReplicas"`
	UpdatedReplicas    int32    `wre:"status.updatedReplicas"`
	ObservedGeneration int64    `wre:"status.observedGeneration"`
}

// Gizmo is the custom resource's image and replicas.
//
// +wre:resource group=bench.wre.dev version=v1 resource=gizmos kind=Gizmo
type Gizmo struct {
	lean.Meta
	Labels   lean.Map `wre:"metadata.labels"`
	Image    string   `wre:"spec.image"`
	Replicas int64    `wre:"spec.replicas"`
}

// ConfigMap is a listed ConfigMap's labels and data.
//
// +wre:resource version=v1 resource=configmaps kind=ConfigMap
type ConfigMap struct {
	lean.Meta
	Labels lean.Map `wre:"metadata.labels"`
	Data   lean.Map `wre:"data"`
}

var (
	deployment Deployment
	gizmo      Gizmo
	configMap  ConfigMap
)

func init() { lean.Register(lean.For(reconcile)) }

func main() {}

var errEmpty = errors.New("empty object")

func reconcile(ctx context.Context, h *lean.Host, req lean.Request[Primary]) (lean.Result, error) {
	switch req.Namespace {
	case "noop":
		return lean.Result{}, nil
	case "get":
		if err := h.Get(ctx, "bench", req.Name, &deployment); err != nil {
			return lean.Result{}, err
		}
		if deployment.Replicas == 0 {
			return lean.Result{}, errEmpty
		}
	case "get-cr":
		if err := h.Get(ctx, "bench", req.Name, &gizmo); err != nil {
			return lean.Result{}, err
		}
		if gizmo.Image == "" {
			return lean.Result{}, errEmpty
		}
	case "list":
		n := 0
		if err := h.List(ctx, &configMap, lean.ListOptions{Namespace: "bench", LabelSelector: "bench=list"}, func() error {
			n++
			return nil
		}); err != nil {
			return lean.Result{}, err
		}
		if n != 100 {
			return lean.Result{}, errors.New("list: not 100 ConfigMaps")
		}
	case "apply":
		if err := h.Get(ctx, "bench", req.Name, &deployment); err != nil {
			return lean.Result{}, err
		}
		if err := h.Apply(ctx, &deployment); err != nil {
			return lean.Result{}, err
		}
	default:
		return lean.Result{}, lean.TerminalError(errors.New("unknown operation " + req.Namespace))
	}
	return lean.Result{}, nil
}
