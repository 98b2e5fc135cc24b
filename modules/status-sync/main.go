// Command status-sync is a wre module that copies a Widget's spec.desired into
// its status.current: the smallest reconciler on the custom-resource (JSON)
// path.
package main

import (
	"context"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

// module is what init registers and what the tests run.
var module = wre.Module{
	Scheme: newScheme(),
	Setup: func(h *wre.Host) (wre.Reconciler, error) {
		return &reconciler{client: h.Client(), recorder: h.Recorder(), log: h.Log()}, nil
	},
}

func init() { wre.Register(module) }

// main is never called: the host starts the module as a reactor.
func main() {}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := addToScheme(s); err != nil {
		panic(err)
	}
	return s
}

type reconciler struct {
	client   client.Client
	recorder wre.EventRecorder
	log      logr.Logger
}

// Reconcile sets status.current to spec.desired when they differ.
func (r *reconciler) Reconcile(ctx context.Context, req wre.Request) (wre.Result, error) {
	var w Widget
	if err := r.client.Get(ctx, req.NamespacedName, &w); err != nil {
		// A deleted Widget has nothing left to sync.
		if apierrors.IsNotFound(err) {
			return wre.Result{}, nil
		}
		return wre.Result{}, err
	}
	if w.DeletionTimestamp != nil || (w.Status.Current == w.Spec.Desired && w.Status.ObservedGeneration == w.Generation) {
		return wre.Result{}, nil
	}
	previous := w.Status.Current
	w.Status.Current = w.Spec.Desired
	w.Status.ObservedGeneration = w.Generation
	// A Conflict (the Widget changed meanwhile) is returned: the host retries
	// with the new version.
	if err := r.client.Status().Update(ctx, &w); err != nil {
		return wre.Result{}, err
	}
	r.log.Info("synced", "widget", req.String(), "from", previous, "to", w.Status.Current)
	if previous != w.Status.Current {
		r.recorder.Eventf(&w, "Normal", "Synced", "status.current set to %q", w.Status.Current)
	}
	return wre.Result{}, nil
}
