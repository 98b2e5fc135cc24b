package lean

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"time"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

// Projection names the fields of one resource a module reads; generated code
// declares one per tagged struct.
type Projection struct {
	Group, Version, Resource, Kind string
	// Fields are "path:kind" in slot order.
	Fields []string
	// id is the 1-based declaration number the host knows it by.
	id int64
}

// Object is a struct with generated codecs (package leangen).
type Object interface {
	// WreProjection returns the projection the type is decoded from.
	WreProjection() *Projection
	// WreDecode sets the fields from a record of the projection.
	WreDecode(r flat.Record)
	// WreEncode writes the fields as a record of the projection.
	WreEncode(b *flat.Builder)
	// WreMeta returns the embedded Meta.
	WreMeta() *Meta
}

// Meta is the metadata every projected object carries; embed it first.
type Meta struct {
	Namespace       string `wre:"metadata.namespace"`
	Name            string `wre:"metadata.name"`
	UID             string `wre:"metadata.uid"`
	ResourceVersion string `wre:"metadata.resourceVersion"`
	Generation      int64  `wre:"metadata.generation"`
	// Deleting is true once the object has a deletion timestamp.
	Deleting bool `wre:"metadata.deletionTimestamp"`
}

// MetaFields are the projection fields of Meta, in its slots 0–5.
var MetaFields = []string{"metadata.namespace:string", "metadata.name:string", "metadata.uid:string",
	"metadata.resourceVersion:string", "metadata.generation:int", "metadata.deletionTimestamp:bool"}

// WreMeta returns m.
func (m *Meta) WreMeta() *Meta { return m }

// DecodeMeta sets m from slots 0–5 of r.
func (m *Meta) DecodeMeta(r flat.Record) {
	m.Namespace, m.Name, m.UID, m.ResourceVersion = r.String(0), r.String(1), r.String(2), r.String(3)
	m.Generation, m.Deleting = r.Int(4), r.Bool(5)
}

// EncodeMeta writes m into slots 0–5 of b.
func (m *Meta) EncodeMeta(b *flat.Builder) {
	b.SetString(0, m.Namespace)
	b.SetString(1, m.Name)
	b.SetString(2, m.UID)
	b.SetString(3, m.ResourceVersion)
	b.SetInt(4, m.Generation)
	b.SetBool(5, m.Deleting)
}

// Map is a map of strings: a view of a decoded record, or a Go map the
// module set (MapOf).
type Map struct {
	view flat.StringMap
	m    map[string]string
	set  bool
}

// MapOf returns a Map holding m.
func MapOf(m map[string]string) Map { return Map{m: m, set: true} }

// DecodeMap returns the Map view of slot i of r.
func DecodeMap(r flat.Record, i int) Map { return Map{view: r.Map(i)} }

// Encode writes the map into slot i of b.
func (m Map) Encode(b *flat.Builder, i int) {
	if m.set {
		b.SetMap(i, m.m)
		return
	}
	b.SetPairs(i, m.view.Len(), m.view.Key, m.view.Value)
}

// Len returns the number of keys.
func (m Map) Len() int {
	if m.set {
		return len(m.m)
	}
	return m.view.Len()
}

// Get returns the value of k.
func (m Map) Get(k string) (string, bool) {
	if m.set {
		v, ok := m.m[k]
		return v, ok
	}
	return m.view.Get(k)
}

// All iterates over the pairs (sorted by key for a decoded map).
func (m Map) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		if m.set {
			for k, v := range m.m {
				if !yield(k, v) {
					return
				}
			}
			return
		}
		for j := range m.view.Len() {
			if !yield(m.view.Key(j), m.view.Value(j)) {
				return
			}
		}
	}
}

// Equal reports whether m and o hold the same pairs.
func (m Map) Equal(o Map) bool {
	if !m.set && !o.set {
		return m.view.Equal(o.view)
	}
	if m.Len() != o.Len() {
		return false
	}
	for k, v := range m.All() {
		if w, ok := o.Get(k); !ok || w != v {
			return false
		}
	}
	return true
}

// List is a list of strings: a view of a decoded record, or a Go slice.
type List struct {
	view flat.List
	s    []string
	set  bool
}

// ListOf returns a List holding s.
func ListOf(s []string) List { return List{s: s, set: true} }

// DecodeList returns the List view of slot i of r.
func DecodeList(r flat.Record, i int) List { return List{view: r.List(i)} }

// Encode writes the list into slot i of b.
func (l List) Encode(b *flat.Builder, i int) {
	if l.set {
		b.SetStrings(i, l.s)
		return
	}
	s := make([]string, l.view.Len())
	for j := range s {
		s[j] = l.view.At(j)
	}
	b.SetStrings(i, s)
}

// Len returns the number of elements.
func (l List) Len() int {
	if l.set {
		return len(l.s)
	}
	return l.view.Len()
}

// At returns element j.
func (l List) At(j int) string {
	if l.set {
		return l.s[j]
	}
	return l.view.At(j)
}

// Contains reports whether s is an element.
func (l List) Contains(s string) bool {
	for j := range l.Len() {
		if l.At(j) == s {
			return true
		}
	}
	return false
}

// Request is one reconcile: the object's key and, when it exists, the object
// itself in its projection.
type Request[T any] struct {
	Namespace, Name string
	// Object is the primary object, nil when it does not exist (deleted). It
	// is reused by the next reconcile: do not keep it.
	Object *T
}

// String returns "namespace/name", or "name" for cluster-scoped objects.
func (r Request[T]) String() string {
	if r.Namespace == "" {
		return r.Name
	}
	return r.Namespace + "/" + r.Name
}

// Result tells the host what to do after a successful reconcile.
type Result struct {
	// RequeueAfter, when positive, reconciles the object again after it.
	RequeueAfter time.Duration
}

// Module is what Register takes; build it with For.
type Module struct {
	primary Object
	run     func(ctx context.Context, h *Host, rec flat.Record, found bool, ns, name string) (Result, error)
}

// For returns the module whose primary resource is T's and whose reconciler
// is fn.
func For[T any, P interface {
	*T
	Object
}](fn func(ctx context.Context, h *Host, req Request[T]) (Result, error)) Module {
	var obj T // reused by every reconcile of the instance
	return Module{
		primary: P(&obj),
		run: func(ctx context.Context, h *Host, rec flat.Record, found bool, ns, name string) (Result, error) {
			req := Request[T]{Namespace: ns, Name: name}
			if found {
				obj = *new(T)
				P(&obj).WreDecode(rec)
				req.Object = &obj
			}
			return fn(ctx, h, req)
		},
	}
}

// terminal marks an error that retrying cannot fix.
type terminal struct{ err error }

func (e *terminal) Error() string { return "terminal error: " + fmt.Sprint(e.err) }
func (e *terminal) Unwrap() error { return e.err }

// TerminalError wraps err so that the host does not retry the reconcile.
func TerminalError(err error) error { return &terminal{err: err} }

// IsTerminal reports whether err is (or wraps) a TerminalError.
func IsTerminal(err error) bool {
	var t *terminal
	return errors.As(err, &t)
}

// StatusError is a failed host call, with the Kubernetes status it carried.
type StatusError struct{ abi.Status }

func (e *StatusError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("status %d %s", e.Code, e.Reason)
}

func reasonOf(err error) string {
	var s *StatusError
	if errors.As(err, &s) {
		return s.Reason
	}
	return ""
}

// IsNotFound reports whether err is a NotFound status.
func IsNotFound(err error) bool { return reasonOf(err) == "NotFound" }

// IsAlreadyExists reports whether err is an AlreadyExists status.
func IsAlreadyExists(err error) bool { return reasonOf(err) == "AlreadyExists" }

// IsConflict reports whether err is a Conflict status.
func IsConflict(err error) bool { return reasonOf(err) == "Conflict" }

// IsForbidden reports whether err is a Forbidden status.
func IsForbidden(err error) bool { return reasonOf(err) == "Forbidden" }

// IsInvalid reports whether err is an Invalid status.
func IsInvalid(err error) bool { return reasonOf(err) == "Invalid" }

// panicError is a panic recovered in the reconciler.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.value, e.stack) }

// protect runs fn and turns a panic into a *panicError.
func protect(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return fn()
}
