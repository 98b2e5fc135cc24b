package modulestatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/wre-dev/wre/engine/registry"
)

// GVR is the resource the publisher writes: wremodules.wre.dev/v1alpha1,
// defined by deploy/base/wremodule-crd.yaml.
var GVR = schema.GroupVersionResource{Group: "wre.dev", Version: "v1alpha1", Resource: "wremodules"}

// Phases of a module (status.phase).
const (
	// PhaseLoading: no version serves yet and none has failed.
	PhaseLoading = "Loading"
	// PhaseReady: the newest version serves.
	PhaseReady = "Ready"
	// PhaseDegraded: an older version serves; the newest failed to load
	// (status.lastError says why).
	PhaseDegraded = "Degraded"
	// PhaseFailed: nothing serves; the newest version failed to load.
	PhaseFailed = "Failed"
)

// FieldManager is the server-side apply field manager of everything the
// publisher writes.
const FieldManager = "wre-engine"

// managedByLabel marks the WreModules the publisher owns: it deletes only
// those, when their module is gone.
const managedByLabel = "app.kubernetes.io/managed-by"

// DefaultInterval is how often the publisher compares the modules' state with
// what it last wrote, when Options.Interval is zero.
const DefaultInterval = 5 * time.Second

// Source reports the state of every module; *registry.Registry is one.
type Source interface {
	Statuses() []registry.Status
}

// Options configures a Publisher.
type Options struct {
	// Namespace holds the WreModules: the engine's module namespace.
	Namespace string
	// Client writes them.
	Client dynamic.Interface
	// Source reports the modules' state.
	Source Source
	// Leading reports whether this replica runs the modules (holds the
	// leader lease); only then does it write. Defaults to always.
	Leading func() bool
	// Identity names this replica in status.servedBy.
	Identity string
	// Interval between passes. Defaults to DefaultInterval.
	Interval time.Duration
	// Logger for write failures. Defaults to discarding.
	Logger logr.Logger
	// Now is the clock of status.lastErrorAt. Defaults to time.Now.
	Now func() time.Time
}

// Publisher writes one WreModule per module. Guarantees:
//   - It writes only while Leading reports true, so replicas never fight over
//     the objects; after it starts leading it rewrites every status once.
//   - A status is written when it differs from what this publisher last wrote
//     (at most once per Interval per module), never otherwise: an idle engine
//     makes no API calls beyond one list per Interval.
//   - It deletes only WreModules labelled as managed by the engine whose
//     module is gone; it never writes ConfigMaps or any other object.
//   - A failing write (API error, CRD not installed) is logged and retried on
//     the next pass; it never stops the engine or other modules.
type Publisher struct {
	opts    Options
	log     logr.Logger
	res     dynamic.ResourceInterface
	written map[string]string // module → JSON of the last status written
	errorAt map[string]errorSeen
	leading bool
}

// errorSeen is when the publisher first saw a module's current last error.
type errorSeen struct {
	msg string
	at  time.Time
}

// New returns a Publisher; Run starts it.
func New(opts Options) (*Publisher, error) {
	if opts.Namespace == "" || opts.Client == nil || opts.Source == nil {
		return nil, errors.New("module status: Namespace, Client and Source are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Leading == nil {
		opts.Leading = func() bool { return true }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Publisher{
		opts:    opts,
		log:     opts.Logger.WithName("module-status"),
		res:     opts.Client.Resource(GVR).Namespace(opts.Namespace),
		written: map[string]string{},
		errorAt: map[string]errorSeen{},
	}, nil
}

// Run publishes every Interval until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	failing := false
	for {
		err := p.Sync(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			p.log.Error(err, "Cannot publish module status (is deploy/base/wremodule-crd.yaml installed and the engine allowed to write wremodules?); retrying every interval", "interval", p.opts.Interval.String())
			failing = true
		case err == nil && failing:
			p.log.Info("Publishing module status again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync makes one pass: it writes the statuses that changed and deletes the
// WreModules of modules that are gone. It returns the first error; the other
// modules are still written.
func (p *Publisher) Sync(ctx context.Context) error {
	if !p.opts.Leading() {
		if p.leading {
			clear(p.written) // another replica may write meanwhile: rewrite all when leading again
			p.leading = false
		}
		return nil
	}
	p.leading = true
	list, err := p.res.List(ctx, metav1.ListOptions{LabelSelector: managedByLabel + "=" + FieldManager})
	if err != nil {
		return fmt.Errorf("list %s: %w", GVR.GroupResource(), err)
	}
	existing := map[string]bool{}
	for _, item := range list.Items {
		existing[item.GetName()] = true
	}
	var errs []error
	present := map[string]bool{}
	for _, st := range p.opts.Source.Statuses() {
		present[st.Name] = true
		if !existing[st.Name] {
			delete(p.written, st.Name) // deleted by someone else: write it again
		}
		if err := p.publish(ctx, st, existing[st.Name]); err != nil {
			errs = append(errs, fmt.Errorf("module %q: %w", st.Name, err))
		}
	}
	for _, item := range list.Items {
		if !present[item.GetName()] {
			errs = append(errs, p.deleteGone(ctx, item))
		}
	}
	return errors.Join(errs...)
}

// publish writes st's WreModule when its status changed since the last write:
// the object itself only when it does not exist yet, then its status.
func (p *Publisher) publish(ctx context.Context, st registry.Status, exists bool) error {
	status := p.statusOf(st)
	raw, err := json.Marshal(status)
	if err != nil {
		return err
	}
	if p.written[st.Name] == string(raw) {
		return nil
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	obj := p.object(st.Name)
	if !exists {
		if _, err := p.res.Apply(ctx, st.Name, obj, opts); err != nil {
			return fmt.Errorf("apply %s: %w", GVR.GroupResource(), err)
		}
	}
	obj.Object["status"] = status
	if _, err := p.res.ApplyStatus(ctx, st.Name, obj, opts); err != nil {
		return fmt.Errorf("apply %s status: %w", GVR.GroupResource(), err)
	}
	p.written[st.Name] = string(raw)
	return nil
}

// object is the WreModule of module without status: the fields the engine
// owns in the main resource.
func (p *Publisher) object(module string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GVR.GroupVersion().String(),
		"kind":       "WreModule",
		"metadata": map[string]any{
			"name": module, "namespace": p.opts.Namespace,
			"labels": map[string]any{managedByLabel: FieldManager},
		},
		"spec": map[string]any{"configMap": "wre-module-" + module},
	}}
}

// statusOf maps a registry status to status of a WreModule (JSON-ready).
func (p *Publisher) statusOf(st registry.Status) map[string]any {
	out := map[string]any{
		"phase":           Phase(st),
		"instances":       int64(st.Instances),
		"reconciles":      st.Reconciles,
		"reconcileErrors": st.ReconcileErrors,
	}
	if p.opts.Identity != "" {
		out["servedBy"] = p.opts.Identity
	}
	if st.Digest != "" {
		out["digest"] = st.Digest
		out["version"] = ShortDigest(st.Digest)
	}
	if st.ABI != "" {
		out["abi"] = st.ABI
	}
	if st.LoadedAt != nil {
		out["loadedAt"] = st.LoadedAt.UTC().Format(time.RFC3339)
	}
	if st.LastError == "" {
		delete(p.errorAt, st.Name)
	} else {
		seen, ok := p.errorAt[st.Name]
		if !ok || seen.msg != st.LastError {
			seen = errorSeen{msg: st.LastError, at: p.opts.Now()}
			p.errorAt[st.Name] = seen
		}
		out["lastError"] = st.LastError
		out["lastErrorAt"] = seen.at.UTC().Format(time.RFC3339)
	}
	return out
}

// Phase derives a module's phase from the registry's state and whether a
// version serves; `wre status` shows the same.
func Phase(st registry.Status) string {
	serving := st.Digest != ""
	switch {
	case st.State == registry.StateLoadFailed && serving:
		return PhaseDegraded
	case st.State == registry.StateLoadFailed:
		return PhaseFailed
	case serving:
		return PhaseReady
	default:
		return PhaseLoading
	}
}

// ShortDigest shortens "sha256:<64 hex>" to "sha256:<12 hex>", as image
// references are shortened; other strings are returned as they are.
func ShortDigest(d string) string {
	const prefix = "sha256:"
	return d[:min(len(d), len(prefix)+12)]
}

// deleteGone deletes item, the WreModule of a module that is gone, unless it
// was recreated meanwhile (UID precondition).
func (p *Publisher) deleteGone(ctx context.Context, item unstructured.Unstructured) error {
	name, uid := item.GetName(), item.GetUID()
	err := p.res.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete %s %s: %w", GVR.GroupResource(), name, err)
	}
	delete(p.written, name)
	delete(p.errorAt, name)
	return nil
}
