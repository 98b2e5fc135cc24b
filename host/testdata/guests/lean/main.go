// Command lean is an ABI v2 test guest written with the lean SDK. It
// reconciles ConfigMaps; what it does depends on the reconciled name:
//
//	copy-*     applies a copy named <name>-copy with the same labels and data
//	status-*   applies its status fields (a Widget-shaped status on a CR)
//	list-*     lists the ConfigMaps labelled app=<label app> and logs the count
//	requeue-*  requeues after 5 s
//	terminal-* fails terminally
//	panic-*    panics
//	other      checks nothing and succeeds (no host call)
//
// A deleted object logs "gone". The host tests use it (host/abiv2_test.go).
package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/wre-dev/wre/guest-sdk/lean"
)

// ConfigMap is what the guest reads of a ConfigMap.
//
// +wre:resource version=v1 resource=configmaps kind=ConfigMap
type ConfigMap struct {
	lean.Meta
	Labels     lean.Map  `wre:"metadata.labels"`
	Finalizers lean.List `wre:"metadata.finalizers"`
	Data       lean.Map  `wre:"data"`
	// Immutable is a bool field.
	Immutable bool `wre:"immutable"`
}

var other ConfigMap

func init() { lean.Register(lean.For(reconcile)) }

func main() {}

func reconcile(ctx context.Context, h *lean.Host, req lean.Request[ConfigMap]) (lean.Result, error) {
	cm := req.Object
	if cm == nil {
		h.Info("gone", "object", req.String())
		return lean.Result{}, nil
	}
	switch prefix, _, _ := strings.Cut(req.Name, "-"); prefix {
	case "copy":
		other = ConfigMap{}
		other.Namespace, other.Name = cm.Namespace, cm.Name+"-copy"
		labels := map[string]string{"copy-of": cm.Name}
		for k, v := range cm.Labels.All() {
			labels[k] = v
		}
		other.Labels, other.Data = lean.MapOf(labels), cm.Data
		if err := h.Apply(ctx, &other); err != nil {
			return lean.Result{}, err
		}
		got := other.Name
		if err := h.Get(ctx, cm.Namespace, got, &other); err != nil {
			return lean.Result{}, err
		}
		if !other.Data.Equal(cm.Data) {
			return lean.Result{}, errors.New("copy differs from its source")
		}
		h.Info("copied", "to", got, "uid", other.UID)
	case "list":
		app, _ := cm.Labels.Get("app")
		n := 0
		if err := h.List(ctx, &other, lean.ListOptions{Namespace: cm.Namespace, LabelSelector: "app=" + app}, func() error {
			n++
			return nil
		}); err != nil {
			return lean.Result{}, err
		}
		h.Info("listed", "count", strconv.Itoa(n), "finalizers", strconv.Itoa(cm.Finalizers.Len()))
	case "requeue":
		return lean.Result{RequeueAfter: 5 * time.Second}, nil
	case "terminal":
		return lean.Result{}, lean.TerminalError(errors.New("cannot fix " + req.Name))
	case "panic":
		panic("boom " + req.Name)
	case "missing":
		err := h.Get(ctx, cm.Namespace, "does-not-exist", &other)
		h.Info("missing", "notFound", strconv.FormatBool(lean.IsNotFound(err)))
	}
	return lean.Result{}, nil
}
