// Command status-sync is a wre module that copies a Widget's spec.desired into
// its status.current: the smallest reconciler, written with the lean SDK
// (ABI v2). The Widget arrives with the reconcile request, projected to the
// fields below; an in-sync Widget costs no host call.
package main

import (
	"context"
	"strconv"

	"github.com/wre-dev/wre/guest-sdk/lean"
)

// Widget is the part of a Widget custom resource this module reads and writes.
//
// +wre:resource group=demo.wre.dev version=v1 resource=widgets kind=Widget
type Widget struct {
	lean.Meta
	Desired string `wre:"spec.desired"`
	Current string `wre:"status.current"`
	// ObservedGeneration is the generation Current was copied from.
	ObservedGeneration int64 `wre:"status.observedGeneration"`
}

func init() { lean.Register(lean.For(reconcile)) }

// main is never called: the host starts the module as a reactor.
func main() {}

// reconcile sets status.current to spec.desired when they differ.
func reconcile(ctx context.Context, h *lean.Host, req lean.Request[Widget]) (lean.Result, error) {
	w := req.Object
	// A deleted Widget has nothing left to sync.
	if w == nil || w.Deleting || (w.Current == w.Desired && w.ObservedGeneration == w.Generation) {
		return lean.Result{}, nil
	}
	previous := w.Current
	w.Current, w.ObservedGeneration = w.Desired, w.Generation
	// A server-side apply of the status fields: the module owns them, so a
	// concurrent change elsewhere in the Widget does not conflict.
	if err := h.ApplyStatus(ctx, w); err != nil {
		return lean.Result{}, err
	}
	h.Info("synced", "widget", req.String(), "from", previous, "to", w.Current)
	if previous != w.Current {
		h.Event(ctx, "Normal", "Synced", "status.current set to "+strconv.Quote(w.Current))
	}
	return lean.Result{}, nil
}
