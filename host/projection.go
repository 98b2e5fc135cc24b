package host

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

// maxProjectionFields bounds the fields of one projection, counting the
// fields of its element projections.
const maxProjectionFields = 256

// maxProjectionDepth bounds the nesting of records fields: a list of objects
// whose elements hold lists of objects, and so on.
const maxProjectionDepth = 4

// projection is an ABI v2 projection (docs/abi.md §10.3): the fields of one
// resource a module reads, in slot order. The host encodes cached objects
// into it and builds server-side apply bodies from records of it.
type projection struct {
	gvr    schema.GroupVersionResource
	kind   string
	fields []projectedField
	kinds  []flat.Kind
	// decl is the declaration as the guest sent it, to compare the
	// declarations of a module's instances.
	decl string
	// accessors caches, per Go type of typed objects, how to reach each field.
	accessors sync.Map // reflect.Type -> *typedAccessors
}

type projectedField struct {
	path []string
	kind flat.Kind
	// elem is the projection of each element of a Records field, with paths
	// relative to the element.
	elem *projection
}

func (f projectedField) String() string { return strings.Join(f.path, ".") }

// readOnlyMeta are metadata fields an apply never sends: the server owns them,
// and the request's namespace and name identify the object.
var readOnlyMeta = []string{"namespace", "name", "uid", "resourceVersion", "generation",
	"deletionTimestamp", "creationTimestamp", "managedFields", "deletionGracePeriodSeconds"}

// parseProjection validates a declare request: its resource, and each field
// "path:kind" with a dotted path of JSON field names, or
// "path:records{field,...}" for a list of objects.
func parseProjection(req *abi.Request) (*projection, error) {
	if req.Version == "" || req.Resource == "" || req.Kind == "" {
		return nil, fmt.Errorf("declare: version, resource and kind are required")
	}
	if len(req.Fields) == 0 {
		return nil, fmt.Errorf("declare %s: no fields", req.Resource)
	}
	p := &projection{
		gvr:  schema.GroupVersionResource{Group: req.Group, Version: req.Version, Resource: req.Resource},
		kind: req.Kind,
		decl: req.Group + "/" + req.Version + "/" + req.Resource + "/" + req.Kind + "=" + strings.Join(req.Fields, ","),
	}
	budget := maxProjectionFields
	if err := p.parseFields(req.Fields, 0, &budget); err != nil {
		return nil, fmt.Errorf("declare %s: %w", req.Resource, err)
	}
	// A built-in type is checked now, so that a field it does not have fails
	// the load rather than every reconcile.
	if t, err := scheme.Scheme.New(p.gvr.GroupVersion().WithKind(p.kind)); err == nil {
		if _, err := p.accessorsOf(reflect.TypeOf(t)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// parseFields appends the fields to p, the element projections of records
// fields included, spending one of *budget per field.
func (p *projection) parseFields(fields []string, depth int, budget *int) error {
	if depth >= maxProjectionDepth {
		return fmt.Errorf("records nested deeper than %d levels", maxProjectionDepth)
	}
	for _, f := range fields {
		if *budget--; *budget < 0 {
			return fmt.Errorf("more than %d fields", maxProjectionFields)
		}
		path, kindName, ok := strings.Cut(f, ":")
		var elemFields []string
		if inner, isRecords := strings.CutPrefix(kindName, "records{"); isRecords && strings.HasSuffix(inner, "}") {
			kindName = "records"
			if elemFields, ok = splitTopLevel(inner[:len(inner)-1]); !ok || inner == "}" {
				return fmt.Errorf("field %q: want records{field,...} with balanced braces and at least one field", f)
			}
		}
		kind, known := flat.ParseKind(kindName)
		if !ok || !known || (kind == flat.Records) != (elemFields != nil) {
			return fmt.Errorf("field %q: want path:kind with kind one of int, bool, string, bytes, strings, map, or records{field,...}", f)
		}
		segs := strings.Split(path, ".")
		if slices.Contains(segs, "") {
			return fmt.Errorf("field %q: empty path segment", f)
		}
		pf := projectedField{path: segs, kind: kind}
		if kind == flat.Records {
			pf.elem = &projection{gvr: p.gvr, kind: p.kind}
			if err := pf.elem.parseFields(elemFields, depth+1, budget); err != nil {
				return fmt.Errorf("field %s: %w", path, err)
			}
		}
		p.fields = append(p.fields, pf)
		p.kinds = append(p.kinds, kind)
	}
	return nil
}

// splitTopLevel splits s at the commas outside braces; ok is false when the
// braces do not balance.
func splitTopLevel(s string) (parts []string, ok bool) {
	depth, start := 0, 0
	for i := range len(s) {
		switch s[i] {
		case '{':
			depth++
		case '}':
			if depth--; depth < 0 {
				return nil, false
			}
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, false
	}
	return append(parts, s[start:]), true
}

// check verifies a record of p from a guest: every slot well formed for its
// kind, and every element of a records field a well-formed record of the
// element projection.
func (p *projection) check(rec flat.Record) error {
	if err := rec.Check(p.kinds); err != nil {
		return err
	}
	for i, f := range p.fields {
		if f.elem == nil {
			continue
		}
		l := rec.List(i)
		for j := range l.Len() {
			if err := f.elem.check(l.Record(j)); err != nil {
				return fmt.Errorf("field %s[%d]: %w", f, j, err)
			}
		}
	}
	return nil
}

// encode appends the record of obj to b (reset to the projection's slots).
func (p *projection) encode(b *flat.Builder, obj runtime.Object) error {
	return p.encodeSkipping(b, obj, -1)
}

// encodeSkipping is encode leaving slot skip unset (-1: none).
func (p *projection) encodeSkipping(b *flat.Builder, obj runtime.Object, skip int) error {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return p.encodeMap(b, u.Object, skip)
	}
	acc, err := p.accessorsOf(reflect.TypeOf(obj))
	if err != nil {
		return err
	}
	return p.encodeTyped(b, acc, reflect.ValueOf(obj), skip)
}

// encodeMap writes the record of the JSON object obj into b, but for slot
// skip.
func (p *projection) encodeMap(b *flat.Builder, obj map[string]any, skip int) error {
	b.Reset(len(p.fields))
	for i, f := range p.fields {
		v, found := lookup(obj, f.path)
		if !found || v == nil || i == skip {
			continue // an absent field is the zero value (a Bool: not set)
		}
		if err := setUnstructured(b, i, f, v); err != nil {
			return err
		}
	}
	return nil
}

// encodeTyped writes the record of the Go value root, reached through acc,
// into b, but for slot skip.
func (p *projection) encodeTyped(b *flat.Builder, acc *typedAccessors, root reflect.Value, skip int) error {
	b.Reset(len(p.fields))
	for i, f := range p.fields {
		v, ok := acc.fields[i].get(root)
		if !ok || i == skip {
			continue
		}
		if err := setTyped(b, i, f, v); err != nil {
			return err
		}
	}
	return nil
}

func lookup(obj map[string]any, path []string) (any, bool) {
	var cur any = obj
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func mismatch(f projectedField, v any) error {
	return fmt.Errorf("projection field %s: declared %s, found %T", f, f.kind, v)
}

// setUnstructured stores the JSON value v of field f in slot i.
func setUnstructured(b *flat.Builder, i int, f projectedField, v any) error {
	switch f.kind {
	case flat.Int:
		switch n := v.(type) {
		case int64:
			b.SetInt(i, n)
		case float64:
			if n != float64(int64(n)) {
				return mismatch(f, v)
			}
			b.SetInt(i, int64(n))
		default:
			return mismatch(f, v)
		}
	case flat.Bool:
		// A bool field reads as itself; any other present value as true.
		bv, isBool := v.(bool)
		b.SetBool(i, bv || !isBool)
	case flat.String:
		s, ok := v.(string)
		if !ok {
			return mismatch(f, v)
		}
		b.SetString(i, s)
	case flat.Strings:
		list, ok := v.([]any)
		if !ok {
			return mismatch(f, v)
		}
		out := make([]string, len(list))
		for j, e := range list {
			if out[j], ok = e.(string); !ok {
				return mismatch(f, e)
			}
		}
		b.SetStrings(i, out)
	case flat.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch(f, v)
		}
		out := make(map[string]string, len(m))
		for k, e := range m {
			if out[k], ok = e.(string); !ok {
				return mismatch(f, e)
			}
		}
		b.SetMap(i, out)
	case flat.Records:
		list, ok := v.([]any)
		if !ok {
			return mismatch(f, v)
		}
		var err error
		b.SetRecords(i, len(list), func(j int, e *flat.Builder) {
			m, isObject := list[j].(map[string]any)
			if !isObject {
				e.Reset(len(f.elem.fields))
				err = cmp.Or(err, mismatch(f, list[j]))
				return
			}
			err = cmp.Or(err, f.elem.encodeMap(e, m, -1))
		})
		return err
	default: // flat.Bytes: the subtree as JSON
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("projection field %s: %w", f, err)
		}
		b.SetBytes(i, raw)
	}
	return nil
}

// typedAccessors reach each field of a projection in one Go type.
type typedAccessors struct{ fields []typedField }

// typedField is the route to one field: per path segment, the struct field
// indexes to follow (embedded structs add steps), dereferencing pointers.
type typedField struct{ steps [][]int }

func (f typedField) get(v reflect.Value) (reflect.Value, bool) {
	for _, step := range f.steps {
		for _, idx := range step {
			for v.Kind() == reflect.Pointer {
				if v.IsNil() {
					return v, false
				}
				v = v.Elem()
			}
			v = v.Field(idx)
		}
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return v, false
		}
		v = v.Elem()
	}
	return v, true
}

func (p *projection) accessorsOf(t reflect.Type) (*typedAccessors, error) {
	if a, ok := p.accessors.Load(t); ok {
		return a.(*typedAccessors), nil
	}
	acc := &typedAccessors{}
	for _, f := range p.fields {
		tf, err := resolve(t, f)
		if err != nil {
			return nil, err
		}
		acc.fields = append(acc.fields, tf)
	}
	p.accessors.Store(t, acc)
	return acc, nil
}

// resolve finds the route to f in t by JSON field names.
func resolve(t reflect.Type, f projectedField) (typedField, error) {
	var out typedField
	cur := t
	for n, seg := range f.path {
		for cur.Kind() == reflect.Pointer {
			cur = cur.Elem()
		}
		if cur.Kind() != reflect.Struct {
			return out, fmt.Errorf("projection field %s: %s is not an object in %s", f, strings.Join(f.path[:n], "."), t)
		}
		idx, ft, ok := jsonField(cur, seg)
		if !ok {
			return out, fmt.Errorf("projection field %s: %s has no field %q", f, t, strings.Join(f.path[:n+1], "."))
		}
		out.steps = append(out.steps, idx)
		cur = ft
	}
	leaf := cur
	for leaf.Kind() == reflect.Pointer {
		leaf = leaf.Elem()
	}
	ok := true
	switch f.kind {
	case flat.Int:
		ok = leaf.Kind() >= reflect.Int && leaf.Kind() <= reflect.Uint64
	case flat.String:
		ok = leaf.Kind() == reflect.String || leaf.Implements(jsonMarshaler) || reflect.PointerTo(leaf).Implements(jsonMarshaler)
	case flat.Strings:
		ok = leaf.Kind() == reflect.Slice && leaf.Elem().Kind() == reflect.String
	case flat.Map:
		ok = leaf.Kind() == reflect.Map && leaf.Key().Kind() == reflect.String && leaf.Elem().Kind() == reflect.String
	case flat.Records:
		ok = leaf.Kind() == reflect.Slice && structType(leaf.Elem()).Kind() == reflect.Struct
		if ok {
			if _, err := f.elem.accessorsOf(structType(leaf.Elem())); err != nil {
				return out, fmt.Errorf("projection field %s: %w", f, err)
			}
		}
	}
	if !ok {
		return out, fmt.Errorf("projection field %s: declared %s, but %s has %s", f, f.kind, t, cur)
	}
	return out, nil
}

// structType returns t with its pointers dereferenced.
func structType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// jsonField finds the field of struct t named name in JSON, looking into
// embedded structs without a name of their own (inline), as encoding/json does.
func jsonField(t reflect.Type, name string) ([]int, reflect.Type, bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		if tag == "" && sf.Anonymous {
			et := sf.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if idx, ft, ok := jsonField(et, name); ok {
					return append([]int{i}, idx...), ft, true
				}
			}
			continue
		}
		if tag == "" {
			tag = sf.Name
		}
		if tag == name {
			return []int{i}, sf.Type, true
		}
	}
	return nil, nil, false
}

// setTyped stores the Go value v of field f in slot i.
func setTyped(b *flat.Builder, i int, f projectedField, v reflect.Value) error {
	switch f.kind {
	case flat.Int:
		if v.CanInt() {
			b.SetInt(i, v.Int())
		} else if v.CanUint() {
			b.SetInt(i, int64(v.Uint()))
		}
	case flat.Bool:
		if v.Kind() == reflect.Bool {
			b.SetBool(i, v.Bool())
		} else {
			b.SetBool(i, !v.IsZero())
		}
	case flat.String:
		if v.Kind() == reflect.String {
			b.SetString(i, v.String())
			return nil
		}
		raw, err := marshalValue(v)
		if err != nil {
			return fmt.Errorf("projection field %s: %w", f, err)
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		b.SetString(i, s)
	case flat.Strings:
		b.SetStrings(i, v.Convert(reflect.TypeFor[[]string]()).Interface().([]string))
	case flat.Map:
		b.SetMap(i, v.Convert(reflect.TypeFor[map[string]string]()).Interface().(map[string]string))
	case flat.Records:
		acc, err := f.elem.accessorsOf(structType(v.Type().Elem()))
		if err != nil {
			return err
		}
		b.SetRecords(i, v.Len(), func(j int, e *flat.Builder) {
			err = cmp.Or(err, f.elem.encodeTyped(e, acc, v.Index(j), -1))
		})
		return err
	default: // flat.Bytes
		raw, err := marshalValue(v)
		if err != nil {
			return fmt.Errorf("projection field %s: %w", f, err)
		}
		b.SetBytes(i, raw)
	}
	return nil
}

func marshalValue(v reflect.Value) ([]byte, error) {
	if v.CanAddr() {
		return json.Marshal(v.Addr().Interface())
	}
	return json.Marshal(v.Interface())
}

// applyObject builds the server-side apply body of the record rec of p for
// the object ns/name: the status fields (status) or every other field that
// is not server-owned metadata.
func (p *projection) applyObject(rec flat.Record, status bool, ns, name string) (map[string]any, error) {
	if err := p.check(rec); err != nil {
		return nil, err
	}
	meta := map[string]any{"name": name}
	if ns != "" {
		meta["namespace"] = ns
	}
	obj := map[string]any{"apiVersion": p.gvr.GroupVersion().String(), "kind": p.kind, "metadata": meta}
	err := p.applyFields(obj, rec, func(f projectedField) bool {
		return (f.path[0] == "status") == status && f.path[0] != "apiVersion" && f.path[0] != "kind" &&
			(f.path[0] != "metadata" || len(f.path) != 2 || !slices.Contains(readOnlyMeta, f.path[1]))
	})
	return obj, err
}

// applyFields sets in obj the value of each field of rec that include
// accepts. An empty list, map or JSON subtree is left out: owning no element
// is owning nothing. Within the elements of a records field, so is an empty
// string, so that an element does not send "" for a field the server
// defaults.
func (p *projection) applyFields(obj map[string]any, rec flat.Record, include func(projectedField) bool) error {
	for i, f := range p.fields {
		if include != nil && !include(f) {
			continue
		}
		var v any
		switch f.kind {
		case flat.Int:
			v = rec.Int(i)
		case flat.Bool:
			v = rec.Bool(i)
		case flat.String:
			if include == nil && !rec.Has(i) {
				continue
			}
			v = strings.Clone(rec.String(i))
		case flat.Strings:
			l := rec.List(i)
			if l.Len() == 0 {
				continue
			}
			list := make([]any, l.Len())
			for j := range list {
				list[j] = strings.Clone(l.At(j))
			}
			v = list
		case flat.Map:
			m := rec.Map(i)
			if m.Len() == 0 {
				continue
			}
			out := make(map[string]any, m.Len())
			for j := range m.Len() {
				out[strings.Clone(m.Key(j))] = strings.Clone(m.Value(j))
			}
			v = out
		case flat.Records:
			l := rec.List(i)
			if l.Len() == 0 {
				continue
			}
			list := make([]any, l.Len())
			for j := range list {
				elem := map[string]any{}
				if err := f.elem.applyFields(elem, l.Record(j), nil); err != nil {
					return fmt.Errorf("apply field %s[%d]: %w", f, j, err)
				}
				list[j] = elem
			}
			v = list
		default:
			raw := rec.Bytes(i)
			if len(raw) == 0 {
				continue
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("apply field %s: %w", f, err)
			}
		}
		if err := unstructured.SetNestedField(obj, v, f.path...); err != nil {
			return fmt.Errorf("apply field %s: %w", f, err)
		}
	}
	return nil
}
