// Command configmap-replicator is a wre module that copies ConfigMaps annotated
// with wre.dev/replicate-to: "ns1,ns2" into those namespaces, keeps the copies
// in sync, and deletes them when the source goes or stops naming a namespace.
//
// It is written with the lean SDK (ABI v2): the source arrives with the
// request, projected to the fields below, and copies are written by
// server-side apply, which creates them when missing (so a create never races
// the informer cache). A finalizer on the source makes sure the copies are
// removed before it is gone. Copies carry the labels
// wre.dev/replica-of-namespace and wre.dev/replica-of-name; a ConfigMap with
// the target's name that is not such a copy is left alone (and reported with a
// Warning event).
package main

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/lean"
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

// ConfigMap is what the module reads of a source or a copy, and writes of a
// copy.
//
// +wre:resource version=v1 resource=configmaps kind=ConfigMap
type ConfigMap struct {
	lean.Meta
	Labels      lean.Map  `wre:"metadata.labels"`
	Annotations lean.Map  `wre:"metadata.annotations"`
	Finalizers  lean.List `wre:"metadata.finalizers"`
	Data        lean.Map  `wre:"data"`
	// BinaryData is the binaryData subtree as JSON (the escape hatch for a
	// map of bytes), copied as it is.
	BinaryData []byte `wre:"binaryData"`
}

// SourceFinalizer is the source's finalizer list alone: applying it adds the
// module's finalizer without taking ownership of anything else.
//
// +wre:resource version=v1 resource=configmaps kind=ConfigMap
type SourceFinalizer struct {
	lean.Meta
	Finalizers lean.List `wre:"metadata.finalizers"`
}

func init() { lean.Register(lean.For(reconcile)) }

// main is never called: the host starts the module as a reactor.
func main() {}

// Objects the reconciles reuse: decoding into them allocates nothing.
var (
	source, have ConfigMap
	finalizer    SourceFinalizer
)

// reconcile syncs the copies of a source ConfigMap. A copy's own changes
// reconcile its source, so a copy edited or deleted by hand is repaired.
func reconcile(ctx context.Context, h *lean.Host, req lean.Request[ConfigMap]) (lean.Result, error) {
	cm := req.Object
	if cm == nil {
		return lean.Result{}, nil
	}
	if ns, name, ok := sourceOf(cm); ok {
		if err := h.Get(ctx, ns, name, &source); err != nil {
			// An orphaned copy has no source to sync from.
			if lean.IsNotFound(err) {
				return lean.Result{}, nil
			}
			return lean.Result{}, err
		}
		cm = &source
	}
	targets := targetNamespaces(cm)
	if err := sync(ctx, h, cm, targets); err != nil {
		return lean.Result{}, err
	}
	if !cm.Deleting && len(targets) > 0 {
		return lean.Result{RequeueAfter: resync}, nil
	}
	return lean.Result{}, nil
}

// sync makes the copies of src match its annotation.
func sync(ctx context.Context, h *lean.Host, src *ConfigMap, targets []string) error {
	hasFinalizer := src.Finalizers.Contains(Finalizer)
	if src.Deleting || len(targets) == 0 {
		if !hasFinalizer {
			return nil
		}
		if err := prune(ctx, h, src, nil); err != nil {
			return err
		}
		return removeFinalizer(ctx, h, src)
	}
	if !hasFinalizer {
		finalizer = SourceFinalizer{Meta: lean.Meta{Namespace: src.Namespace, Name: src.Name}, Finalizers: lean.ListOf([]string{Finalizer})}
		if err := h.Apply(ctx, &finalizer); err != nil {
			return err
		}
	}
	var errs []error
	for _, ns := range targets {
		if err := replicate(ctx, h, src, ns); err != nil {
			errs = append(errs, errors.New("namespace "+ns+": "+err.Error()))
		}
	}
	errs = append(errs, prune(ctx, h, src, targets))
	return errors.Join(errs...)
}

// removeFinalizer removes the module's finalizer from src with a JSON patch
// that first tests its position: correct whoever added it (an apply, or an
// update by an earlier version), and refused if the list changed meanwhile.
func removeFinalizer(ctx context.Context, h *lean.Host, src *ConfigMap) error {
	for i := range src.Finalizers.Len() {
		if src.Finalizers.At(i) != Finalizer {
			continue
		}
		path := `"/metadata/finalizers/` + strconv.Itoa(i) + `"`
		patch := `[{"op":"test","path":` + path + `,"value":"` + Finalizer + `"},{"op":"remove","path":` + path + `}]`
		finalizer = SourceFinalizer{Meta: src.Meta}
		return h.Patch(ctx, &finalizer, abi.PatchJSON, []byte(patch))
	}
	return nil
}

// replicate creates or updates the copy of src in namespace ns.
func replicate(ctx context.Context, h *lean.Host, src *ConfigMap, ns string) error {
	err := h.Get(ctx, ns, src.Name, &have)
	switch {
	case lean.IsNotFound(err):
		if err := apply(ctx, h, src, ns); err != nil {
			return err
		}
		h.Info("created copy", "source", src.Namespace+"/"+src.Name, "namespace", ns)
		h.Event(ctx, "Normal", "Replicated", "copied to namespace "+ns)
		return nil
	case err != nil:
		return err
	}
	if sns, sname, ok := sourceOf(&have); !ok || sns != src.Namespace || sname != src.Name {
		h.Event(ctx, "Warning", "TargetExists", "namespace "+ns+" already has a ConfigMap "+have.Name+" that is not a copy of this one; left alone")
		return nil
	}
	if have.Data.Equal(src.Data) && string(have.BinaryData) == string(src.BinaryData) && labelsMatch(&have, src) && have.Annotations.Len() == 0 {
		return nil
	}
	if err := apply(ctx, h, src, ns); err != nil {
		return err
	}
	h.Info("updated copy", "source", src.Namespace+"/"+src.Name, "namespace", ns)
	return nil
}

// apply writes the copy of src in namespace ns: src's labels plus the source
// labels, its data, no annotations (so a copy never replicates itself).
func apply(ctx context.Context, h *lean.Host, src *ConfigMap, ns string) error {
	labels := map[string]string{LabelReplicaOfNamespace: src.Namespace, LabelReplicaOfName: src.Name}
	for k, v := range src.Labels.All() {
		if k != LabelReplicaOfNamespace && k != LabelReplicaOfName {
			labels[k] = v
		}
	}
	want := ConfigMap{Meta: lean.Meta{Namespace: ns, Name: src.Name}, Labels: lean.MapOf(labels), Data: src.Data, BinaryData: src.BinaryData}
	return h.Apply(ctx, &want)
}

// labelsMatch reports whether copy c has exactly src's labels plus the
// source labels.
func labelsMatch(c, src *ConfigMap) bool {
	extra := 2
	if _, ok := src.Labels.Get(LabelReplicaOfNamespace); ok {
		extra--
	}
	if _, ok := src.Labels.Get(LabelReplicaOfName); ok {
		extra--
	}
	if c.Labels.Len() != src.Labels.Len()+extra {
		return false
	}
	for k, v := range src.Labels.All() {
		if k == LabelReplicaOfNamespace || k == LabelReplicaOfName {
			continue
		}
		if w, ok := c.Labels.Get(k); !ok || w != v {
			return false
		}
	}
	ns, name, ok := sourceOf(c)
	return ok && ns == src.Namespace && name == src.Name
}

// prune deletes the copies of src outside keep.
func prune(ctx context.Context, h *lean.Host, src *ConfigMap, keep []string) error {
	var doomed []ConfigMap
	selector := LabelReplicaOfNamespace + "=" + src.Namespace + "," + LabelReplicaOfName + "=" + src.Name
	if err := h.List(ctx, &have, lean.ListOptions{LabelSelector: selector}, func() error {
		if !slices.Contains(keep, have.Namespace) {
			doomed = append(doomed, ConfigMap{Meta: lean.Meta{Namespace: strings.Clone(have.Namespace), Name: strings.Clone(have.Name), UID: strings.Clone(have.UID)}})
		}
		return nil
	}); err != nil {
		return err
	}
	var errs []error
	for i := range doomed {
		c := &doomed[i]
		if err := h.Delete(ctx, c); err != nil {
			errs = append(errs, errors.New("delete copy in "+c.Namespace+": "+err.Error()))
			continue
		}
		h.Info("deleted copy", "source", src.Namespace+"/"+src.Name, "namespace", c.Namespace)
	}
	return errors.Join(errs...)
}

// targetNamespaces parses the annotation of src: trimmed, de-duplicated,
// sorted, without src's own namespace.
func targetNamespaces(src *ConfigMap) []string {
	var out []string
	annotation, _ := src.Annotations.Get(AnnotationReplicateTo)
	for ns := range strings.SplitSeq(annotation, ",") {
		if ns = strings.TrimSpace(ns); ns != "" && ns != src.Namespace {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sourceOf returns the source named by a copy's labels.
func sourceOf(cm *ConfigMap) (ns, name string, ok bool) {
	ns, _ = cm.Labels.Get(LabelReplicaOfNamespace)
	name, _ = cm.Labels.Get(LabelReplicaOfName)
	return ns, name, ns != "" && name != ""
}
