package modules

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/wre-dev/wre/host"
)

// APIVersion and Kind identify a module manifest.
const (
	APIVersion = "wre.dev/v1alpha1"
	Kind       = "Module"
)

// Absolute bounds of the engine's ceilings (Limits) and of the config, so
// that no engine lets a module ask for unbounded resources.
const (
	MaxConcurrency      = 256
	MaxReconcileTimeout = 10 * time.Minute
	MaxMemoryLimitBytes = 4 << 30
	MaxConfigBytes      = 256 << 10
)

// Predicate names accepted in Manifest.Predicates.
const (
	// PredicateGenerationChanged keeps only updates that change
	// metadata.generation (handler.GenerationChanged).
	PredicateGenerationChanged = "GenerationChanged"
)

// Watch mappings accepted in Watch.MapTo.
const (
	// MapToOwner reconciles every owner of the watched object whose kind is the
	// module's primary kind (any owner reference, not only the controller).
	MapToOwner = "owner"
	// MapToSameName reconciles the primary object with the namespace and name
	// of the watched object.
	MapToSameName = "sameName"
)

// Manifest describes a module: what it reconciles, what it may do and the
// limits it runs with. Its YAML form is module.yaml (docs/modules.md).
type Manifest struct {
	// APIVersion is always "wre.dev/v1alpha1".
	APIVersion string `json:"apiVersion"`
	// Kind is always "Module".
	Kind string `json:"kind"`
	// Name identifies the module: a DNS-1123 label, at most 63 characters. It
	// names the controller, the field manager of its writes and its metrics.
	Name string `json:"name"`
	// ABI is the ABI version the module was built for, e.g. "v1"; the wasm must
	// export the matching marker (wre_abi_v1).
	ABI string `json:"abi"`
	// For is the primary resource: each of its events reconciles the object.
	For Resource `json:"for"`
	// Owns lists resources whose objects carry a controller reference to a
	// For object: their events reconcile that owner.
	Owns []Resource `json:"owns,omitempty"`
	// Watches lists further resources and how their events map to requests.
	Watches []Watch `json:"watches,omitempty"`
	// Permissions are the host calls the module may make. The engine's
	// informers watch For, Owns and Watches on the module's behalf, so each
	// must be granted list and watch cluster-wide.
	Permissions host.Permissions `json:"permissions"`
	// Concurrency is the number of reconciles running at once (and of wasm
	// instances). Defaults to 1.
	Concurrency int `json:"concurrency,omitempty"`
	// ReconcileTimeout stops a reconcile that runs longer. Defaults to 30s.
	ReconcileTimeout metav1.Duration `json:"reconcileTimeout,omitempty"`
	// InitTimeout bounds starting an instance, its _initialize included.
	// Defaults to 10s.
	InitTimeout metav1.Duration `json:"initTimeout,omitempty"`
	// MemoryLimit caps the linear memory of each instance. Defaults to 128Mi.
	MemoryLimit *resource.Quantity `json:"memoryLimit,omitempty"`
	// MaxLogLines bounds the log lines of one reconcile (wre.log calls and
	// stdout/stderr lines together); the rest are dropped and counted.
	// Defaults to 1000.
	MaxLogLines int `json:"maxLogLines,omitempty"`
	// MaxLogBytes bounds the bytes of those lines. Defaults to 1Mi.
	MaxLogBytes *resource.Quantity `json:"maxLogBytes,omitempty"`
	// Config is free-form JSON handed to the module through the config host
	// call. Defaults to empty.
	Config json.RawMessage `json:"config,omitempty"`
	// ServiceAccountName, when set, makes the engine impersonate that
	// ServiceAccount of the module namespace for the module's API calls, so
	// the cluster's RBAC bounds the module as well as Permissions.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// Predicates filter the update events of For and Owns, by name
	// ("GenerationChanged").
	Predicates []string `json:"predicates,omitempty"`
	// Memoize declares that the module's outcome depends only on what it
	// reads through the ABI and its config, so the engine may skip a
	// reconcile whose reads are all unchanged since a reconcile that changed
	// nothing (docs/modules.md "Memoization"). Defaults to false.
	Memoize bool `json:"memoize,omitempty"`
	// Digest is "sha256:<hex>" of the uncompressed wasm. Package sets it;
	// Assemble refuses wasm that does not match it.
	Digest string `json:"digest,omitempty"`
}

// Resource names a resource and its kind.
type Resource struct {
	Group    string `json:"group"`
	Version  string `json:"version"`
	Resource string `json:"resource"`
	Kind     string `json:"kind"`
}

// GVR returns the group, version and resource.
func (r Resource) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource}
}

// GVK returns the group, version and kind.
func (r Resource) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// Watch is a further resource whose events reconcile primary objects.
type Watch struct {
	Resource `json:",inline"`
	// MapTo says which primary objects an event reconciles: "owner" or
	// "sameName". Defaults to "owner".
	MapTo string `json:"mapTo,omitempty"`
}

// ParseManifest decodes a module.yaml strictly (unknown fields are errors) and
// validates it.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal encodes the manifest as YAML.
func (m *Manifest) Marshal() ([]byte, error) { return yaml.Marshal(m) }

var (
	abiPattern    = regexp.MustCompile(`^v[1-9][0-9]*$`)
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	knownVerbs    = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "*"}
	predicates    = []string{PredicateGenerationChanged}
	mappings      = []string{MapToOwner, MapToSameName}
)

// Validate checks the manifest; the error lists every problem, each naming
// its field (e.g. "for.resource: Required value").
func (m *Manifest) Validate() error {
	var errs field.ErrorList
	if m.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), m.APIVersion, []string{APIVersion}))
	}
	if m.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), m.Kind, []string{Kind}))
	}
	errs = append(errs, validateName(field.NewPath("name"), m.Name)...)
	if !abiPattern.MatchString(m.ABI) {
		errs = append(errs, field.Invalid(field.NewPath("abi"), m.ABI, `must be an ABI version such as "v1"`))
	}
	errs = append(errs, m.For.validate(field.NewPath("for"))...)
	for i, r := range m.Owns {
		errs = append(errs, r.validate(field.NewPath("owns").Index(i))...)
	}
	for i, w := range m.Watches {
		p := field.NewPath("watches").Index(i)
		errs = append(errs, w.Resource.validate(p)...)
		if w.MapTo != "" && !slices.Contains(mappings, w.MapTo) {
			errs = append(errs, field.NotSupported(p.Child("mapTo"), w.MapTo, mappings))
		}
	}
	errs = append(errs, m.validatePermissions()...)
	// The upper bounds are the engine's ceilings (Limits.Check, at load).
	if m.Concurrency < 0 {
		errs = append(errs, field.Invalid(field.NewPath("concurrency"), m.Concurrency, "must be positive (0 means 1)"))
	}
	if m.MaxLogLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("maxLogLines"), m.MaxLogLines, "must be positive"))
	}
	if d := m.ReconcileTimeout.Duration; d < 0 {
		errs = append(errs, field.Invalid(field.NewPath("reconcileTimeout"), d.String(), "must be positive"))
	}
	if d := m.InitTimeout.Duration; d < 0 {
		errs = append(errs, field.Invalid(field.NewPath("initTimeout"), d.String(), "must be positive"))
	}
	if q := m.MemoryLimit; q != nil && q.Sign() <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("memoryLimit"), q.String(), "must be positive"))
	}
	if q := m.MaxLogBytes; q != nil && q.Sign() <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("maxLogBytes"), q.String(), "must be positive"))
	}
	if len(m.Config) > 0 {
		if len(m.Config) > MaxConfigBytes {
			errs = append(errs, field.TooLong(field.NewPath("config"), "", MaxConfigBytes))
		} else if !json.Valid(m.Config) {
			errs = append(errs, field.Invalid(field.NewPath("config"), string(m.Config), "must be JSON"))
		}
	}
	if m.ServiceAccountName != "" {
		for _, msg := range validation.IsDNS1123Subdomain(m.ServiceAccountName) {
			errs = append(errs, field.Invalid(field.NewPath("serviceAccountName"), m.ServiceAccountName, msg))
		}
	}
	for i, p := range m.Predicates {
		if !slices.Contains(predicates, p) {
			errs = append(errs, field.NotSupported(field.NewPath("predicates").Index(i), p, predicates))
		}
	}
	if m.Digest != "" && !digestPattern.MatchString(m.Digest) {
		errs = append(errs, field.Invalid(field.NewPath("digest"), m.Digest, `must be "sha256:" and 64 lowercase hex digits`))
	}
	if err := errs.ToAggregate(); err != nil {
		return fmt.Errorf("invalid manifest: %w", err)
	}
	return nil
}

func validateName(p *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

func (r Resource) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.Group != "" {
		for _, msg := range validation.IsDNS1123Subdomain(r.Group) {
			errs = append(errs, field.Invalid(p.Child("group"), r.Group, msg))
		}
	}
	for name, v := range map[string]string{"version": r.Version, "resource": r.Resource, "kind": r.Kind} {
		if v == "" {
			errs = append(errs, field.Required(p.Child(name), ""))
		}
	}
	if r.Resource != "" {
		for _, msg := range validation.IsDNS1123Subdomain(r.Resource) {
			errs = append(errs, field.Invalid(p.Child("resource"), r.Resource, msg))
		}
	}
	slices.SortFunc(errs, func(a, b *field.Error) int { return cmp.Compare(a.Field, b.Field) })
	return errs
}

// validatePermissions checks each grant and that the watched resources may be
// listed and watched cluster-wide.
func (m *Manifest) validatePermissions() field.ErrorList {
	var errs field.ErrorList
	perms := field.NewPath("permissions")
	for i, p := range m.Permissions {
		pp := perms.Index(i)
		for name, list := range map[string][]string{"apiGroups": p.APIGroups, "resources": p.Resources, "verbs": p.Verbs} {
			if len(list) == 0 {
				errs = append(errs, field.Required(pp.Child(name), ""))
			}
		}
		for j, v := range p.Verbs {
			if !slices.Contains(knownVerbs, v) {
				errs = append(errs, field.NotSupported(pp.Child("verbs").Index(j), v, knownVerbs))
			}
		}
	}
	check := func(p *field.Path, r Resource) {
		for _, verb := range []string{"list", "watch"} {
			if r.Resource != "" && !m.Permissions.Allows(verb, r.Group, r.Resource, "") {
				errs = append(errs, field.Forbidden(p, fmt.Sprintf("the engine watches %s for the module: permissions must grant %s on it in every namespace", r.GVR(), verb)))
			}
		}
	}
	check(field.NewPath("for"), m.For)
	for i, r := range m.Owns {
		check(field.NewPath("owns").Index(i), r)
	}
	for i, w := range m.Watches {
		check(field.NewPath("watches").Index(i), w.Resource)
	}
	slices.SortStableFunc(errs, func(a, b *field.Error) int { return cmp.Compare(a.Field, b.Field) })
	return errs
}

// ModuleOptions returns the host options the manifest asks for; the caller
// sets the clients, cache and recorder.
func (m *Manifest) ModuleOptions() host.ModuleOptions {
	o := host.ModuleOptions{
		Name:             m.Name,
		Permissions:      m.Permissions,
		Concurrency:      m.Concurrency,
		ReconcileTimeout: m.ReconcileTimeout.Duration,
		InitTimeout:      m.InitTimeout.Duration,
		Config:           m.Config,
		Primary:          m.For.GVR(),
		PrimaryKind:      m.For.Kind,
	}
	if m.MemoryLimit != nil {
		o.MemoryLimitBytes = uint64(m.MemoryLimit.Value())
	}
	o.MaxLogLines = m.MaxLogLines
	if m.MaxLogBytes != nil {
		o.MaxLogBytes = int(m.MaxLogBytes.Value())
	}
	return o
}

// ABIMarker returns the export the wasm must carry for m.ABI, e.g.
// "wre_abi_v1".
func (m *Manifest) ABIMarker() string { return "wre_abi_" + m.ABI }
