// Command configmap-replicator is a wre module that copies ConfigMaps annotated
// with wre.dev/replicate-to: "ns1,ns2" into those namespaces, keeps the copies
// in sync, and deletes them when the source goes or stops naming a namespace.
//
// It works on built-in types only, so every object crosses the ABI as protobuf.
// A finalizer on the source makes sure the copies are removed before it is gone.
// Copies carry the labels wre.dev/replica-of-namespace and
// wre.dev/replica-of-name; a ConfigMap with the target's name that is not such a
// copy is left alone (and reported with a Warning event).
package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

const (
	// AnnotationReplicateTo lists the target namespaces, comma-separated.
	AnnotationReplicateTo = "wre.dev/replicate-to"
	// LabelReplicaOfNamespace and LabelReplicaOfName name a copy's source.
	LabelReplicaOfNamespace = "wre.dev/replica-of-namespace"
	LabelReplicaOfName      = "wre.dev/replica-of-name"
	// Finalizer holds a source until its copies are deleted.
	Finalizer = "wre.dev/replicator"
	// resync is how often a source is reconciled without a change, to
	// recreate copies deleted by hand (their deletion cannot name the source).
	resync = 10 * time.Minute
)

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
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

type reconciler struct {
	client   client.Client
	recorder wre.EventRecorder
	log      logr.Logger
}

// Reconcile syncs the copies of a source ConfigMap. A copy's own changes
// reconcile its source, so a copy edited or deleted by hand is repaired.
func (r *reconciler) Reconcile(ctx context.Context, req wre.Request) (wre.Result, error) {
	var cm corev1.ConfigMap
	if err := r.client.Get(ctx, req.NamespacedName, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return wre.Result{}, nil
		}
		return wre.Result{}, err
	}
	if src, ok := sourceOf(&cm); ok {
		if err := r.client.Get(ctx, src, &cm); err != nil {
			// An orphaned copy has no source to sync from.
			if apierrors.IsNotFound(err) {
				return wre.Result{}, nil
			}
			return wre.Result{}, err
		}
	}
	if err := r.sync(ctx, &cm); err != nil {
		return wre.Result{}, err
	}
	if cm.DeletionTimestamp == nil && len(targetNamespaces(&cm)) > 0 {
		return wre.Result{RequeueAfter: resync}, nil
	}
	return wre.Result{}, nil
}

// sync makes the copies of src match its annotation.
func (r *reconciler) sync(ctx context.Context, src *corev1.ConfigMap) error {
	targets := targetNamespaces(src)
	hasFinalizer := slices.Contains(src.Finalizers, Finalizer)
	if src.DeletionTimestamp != nil || len(targets) == 0 {
		if !hasFinalizer {
			return nil
		}
		if err := r.prune(ctx, src, nil); err != nil {
			return err
		}
		src.Finalizers = slices.DeleteFunc(src.Finalizers, func(f string) bool { return f == Finalizer })
		return r.client.Update(ctx, src)
	}
	if !hasFinalizer {
		src.Finalizers = append(src.Finalizers, Finalizer)
		if err := r.client.Update(ctx, src); err != nil {
			return err
		}
	}
	var errs []error
	for _, ns := range targets {
		if err := r.replicate(ctx, src, ns); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
		}
	}
	errs = append(errs, r.prune(ctx, src, targets))
	return errors.Join(errs...)
}

// replicate creates or updates the copy of src in namespace ns.
func (r *reconciler) replicate(ctx context.Context, src *corev1.ConfigMap, ns string) error {
	want := replicaOf(src, ns)
	var have corev1.ConfigMap
	err := r.client.Get(ctx, client.ObjectKeyFromObject(want), &have)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.client.Create(ctx, want); err != nil {
			return err
		}
		r.log.Info("created copy", "source", client.ObjectKeyFromObject(src).String(), "namespace", ns)
		r.recorder.Eventf(src, corev1.EventTypeNormal, "Replicated", "copied to namespace %s", ns)
		return nil
	case err != nil:
		return err
	}
	if s, ok := sourceOf(&have); !ok || s != client.ObjectKeyFromObject(src) {
		r.recorder.Eventf(src, corev1.EventTypeWarning, "TargetExists", "namespace %s already has a ConfigMap %s that is not a copy of this one; left alone", ns, have.Name)
		return nil
	}
	if maps.Equal(have.Data, want.Data) && bytesMapsEqual(have.BinaryData, want.BinaryData) && maps.Equal(have.Labels, want.Labels) {
		return nil
	}
	have.Data, have.BinaryData, have.Labels = want.Data, want.BinaryData, want.Labels
	if err := r.client.Update(ctx, &have); err != nil {
		return err
	}
	r.log.Info("updated copy", "source", client.ObjectKeyFromObject(src).String(), "namespace", ns)
	return nil
}

// prune deletes the copies of src outside keep.
func (r *reconciler) prune(ctx context.Context, src *corev1.ConfigMap, keep []string) error {
	var copies corev1.ConfigMapList
	if err := r.client.List(ctx, &copies, client.MatchingLabels{
		LabelReplicaOfNamespace: src.Namespace, LabelReplicaOfName: src.Name,
	}); err != nil {
		return err
	}
	var errs []error
	for i := range copies.Items {
		c := &copies.Items[i]
		if slices.Contains(keep, c.Namespace) {
			continue
		}
		if err := r.client.Delete(ctx, c, client.Preconditions{UID: &c.UID}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete copy in %s: %w", c.Namespace, err))
			continue
		}
		r.log.Info("deleted copy", "source", client.ObjectKeyFromObject(src).String(), "namespace", c.Namespace)
	}
	return errors.Join(errs...)
}

// targetNamespaces parses the annotation of src: trimmed, de-duplicated,
// sorted, without src's own namespace.
func targetNamespaces(src *corev1.ConfigMap) []string {
	var out []string
	for _, ns := range strings.Split(src.Annotations[AnnotationReplicateTo], ",") {
		if ns = strings.TrimSpace(ns); ns != "" && ns != src.Namespace {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// replicaOf returns the copy of src for namespace ns: src's labels plus the
// source labels, its data, no annotations (so a copy never replicates itself).
func replicaOf(src *corev1.ConfigMap, ns string) *corev1.ConfigMap {
	labels := maps.Clone(src.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelReplicaOfNamespace] = src.Namespace
	labels[LabelReplicaOfName] = src.Name
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: src.Name, Labels: labels},
		Data:       src.Data,
		BinaryData: src.BinaryData,
	}
}

// sourceOf returns the source named by a copy's labels.
func sourceOf(cm *corev1.ConfigMap) (types.NamespacedName, bool) {
	ns, name := cm.Labels[LabelReplicaOfNamespace], cm.Labels[LabelReplicaOfName]
	return types.NamespacedName{Namespace: ns, Name: name}, ns != "" && name != ""
}

func bytesMapsEqual(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) })
}
