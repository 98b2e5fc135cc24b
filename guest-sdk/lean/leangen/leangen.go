// Package leangen generates the codecs of lean SDK types (docs/sdk.md): for
// each struct marked with a "+wre:resource" comment, its projection and its
// flat-record decoder and encoder, with no reflection left for run time.
//
// A marked struct embeds lean.Meta first and tags each other field with the
// JSON path it reads, e.g.
//
//	// Widget is the part of a Widget this module reads.
//	// +wre:resource group=demo.wre.dev version=v1 resource=widgets kind=Widget
//	type Widget struct {
//		lean.Meta
//		Desired string `wre:"spec.desired"`
//	}
//
// Field types: string (string), int, int32, int64 (int), bool (bool: for a
// field that is not a bool, whether it is set), lean.Map (map of strings),
// lean.List (list of strings), []byte (the subtree as JSON), and []E for a
// list of objects (records), where E is a struct of the same package whose
// fields are tagged with paths relative to the element, e.g.
//
//	type Condition struct {
//		Type   string `wre:"type"`
//		Status string `wre:"status"`
//	}
//
// Element structs may hold lists of objects of their own, up to the host's
// nesting limit.
package leangen

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	goparser "go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// FileName is the file Generate writes in the package directory.
const FileName = "zz_generated.wre.go"

const marker = "+wre:resource"

// metaFields mirror lean.MetaFields: slots 0–5 of every projection.
var metaFields = []string{"metadata.namespace:string", "metadata.name:string", "metadata.uid:string",
	"metadata.resourceVersion:string", "metadata.generation:int", "metadata.deletionTimestamp:bool"}

type field struct {
	goName, goType, path, kind string
	// elem is the element type of a records field ([]E).
	elem *element
}

// element is a struct used as the element of a records field.
type element struct {
	typeName string
	fields   []field
}

type resource struct {
	typeName                       string
	group, version, resource, kind string
	fields                         []field
}

// maxDepth mirrors the host's limit on nested records fields.
const maxDepth = 4

// scalarKinds are the projection kinds of the field types that are not lists
// of objects.
var scalarKinds = map[string]string{"string": "string", "int": "int", "int32": "int", "int64": "int", "bool": "bool",
	"lean.Map": "map", "lean.List": "strings", "[]byte": "bytes"}

// parser holds the struct types of a package, to resolve element types.
type parser struct {
	fset     *token.FileSet
	structs  map[string]*ast.StructType
	elements map[string]*element
}

// Generate parses the Go package in dir and writes FileName with the codecs
// of its marked types; it removes a stale FileName when there are none. It
// reports whether it found any.
func Generate(dir string) (bool, error) {
	src, err := Source(dir)
	if err != nil || src == nil {
		out := filepath.Join(dir, FileName)
		if err == nil {
			if rmErr := os.Remove(out); rmErr != nil && !os.IsNotExist(rmErr) {
				return false, rmErr
			}
		}
		return false, err
	}
	return true, os.WriteFile(filepath.Join(dir, FileName), src, 0o644)
}

// Source returns what Generate would write for dir, or nil when no type is
// marked.
func Source(dir string) ([]byte, error) {
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("generate %s: %w", dir, err)
	}
	sort.Strings(names)
	var pkgName string
	var resources []resource
	var files []*ast.File
	ps := &parser{fset: fset, structs: map[string]*ast.StructType{}, elements: map[string]*element{}}
	for _, fn := range names {
		base := filepath.Base(fn)
		if strings.HasSuffix(base, "_test.go") || base == FileName {
			continue
		}
		f, err := goparser.ParseFile(fset, fn, nil, goparser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", dir, err)
		}
		if pkgName == "" {
			pkgName = f.Name.Name
		}
		files = append(files, f)
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if st, ok := ts.Type.(*ast.StructType); ok {
					ps.structs[ts.Name.Name] = st
				}
			}
			return true
		})
	}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				r, ok, err := ps.parseResource(ts, doc)
				if err != nil {
					return nil, fmt.Errorf("generate %s: %w", dir, err)
				}
				if ok {
					resources = append(resources, r)
				}
			}
		}
	}
	if len(resources) == 0 {
		return nil, nil
	}
	return render(pkgName, resources, ps.elements)
}

func (ps *parser) parseResource(ts *ast.TypeSpec, doc *ast.CommentGroup) (resource, bool, error) {
	fset := ps.fset
	r := resource{typeName: ts.Name.Name}
	line := ""
	if doc != nil {
		for _, c := range doc.List {
			text := strings.TrimSpace(strings.TrimPrefix(c.Text, "//"))
			if strings.HasPrefix(text, marker) {
				line = strings.TrimSpace(strings.TrimPrefix(text, marker))
			}
		}
	}
	if line == "" {
		return r, false, nil
	}
	pos := fset.Position(ts.Pos())
	for _, kv := range strings.Fields(line) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "group":
			r.group = v
		case "version":
			r.version = v
		case "resource":
			r.resource = v
		case "kind":
			r.kind = v
		default:
			return r, false, fmt.Errorf("%s: %s: unknown key %q (want group, version, resource, kind)", pos, marker, k)
		}
	}
	if r.version == "" || r.resource == "" || r.kind == "" {
		return r, false, fmt.Errorf("%s: %s needs version=, resource= and kind=", pos, marker)
	}
	st, ok := ts.Type.(*ast.StructType)
	if !ok {
		return r, false, fmt.Errorf("%s: %s is not a struct", pos, ts.Name.Name)
	}
	for n, f := range st.Fields.List {
		typ := exprString(f.Type)
		if len(f.Names) == 0 {
			if typ != "lean.Meta" || n != 0 {
				return r, false, fmt.Errorf("%s: %s: the only embedded field must be lean.Meta, first", fset.Position(f.Pos()), ts.Name.Name)
			}
			continue
		}
		if n == 0 {
			return r, false, fmt.Errorf("%s: %s must embed lean.Meta first", fset.Position(f.Pos()), ts.Name.Name)
		}
		fields, err := ps.parseField(f, ts.Name.Name, 0)
		if err != nil {
			return r, false, err
		}
		r.fields = append(r.fields, fields...)
	}
	if len(st.Fields.List) == 0 || len(st.Fields.List[0].Names) != 0 {
		return r, false, fmt.Errorf("%s: %s must embed lean.Meta first", pos, ts.Name.Name)
	}
	return r, true, nil
}

// parseField returns the projected fields of struct field f of the type
// named owner, at nesting depth depth; none when f has no wre tag.
func (ps *parser) parseField(f *ast.Field, owner string, depth int) ([]field, error) {
	typ := exprString(f.Type)
	path := ""
	if f.Tag != nil {
		path = reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("wre")
	}
	if path == "" || len(f.Names) == 0 {
		return nil, nil // not projected: the module's own bookkeeping
	}
	kind, ok := scalarKinds[typ]
	var elem *element
	if !ok {
		name, isSlice := strings.CutPrefix(typ, "[]")
		if _, isStruct := ps.structs[name]; !isSlice || !isStruct {
			return nil, fmt.Errorf("%s: field %s: type %s cannot be projected (want string, int, int32, int64, bool, lean.Map, lean.List, []byte, or []E for a struct E of this package)",
				ps.fset.Position(f.Pos()), f.Names[0].Name, typ)
		}
		var err error
		if elem, err = ps.element(name, owner, depth+1); err != nil {
			return nil, err
		}
		kind = "records{" + elem.decl() + "}"
	}
	var out []field
	for _, name := range f.Names {
		out = append(out, field{goName: name.Name, goType: typ, path: path, kind: kind, elem: elem})
	}
	return out, nil
}

// element parses the struct named name as the element of a records field.
func (ps *parser) element(name, owner string, depth int) (*element, error) {
	if e, ok := ps.elements[name]; ok {
		return e, nil
	}
	st := ps.structs[name]
	if depth >= maxDepth {
		return nil, fmt.Errorf("%s: %s: lists of objects nested deeper than %d levels (through %s)", ps.fset.Position(st.Pos()), owner, maxDepth, name)
	}
	e := &element{typeName: name}
	for _, f := range st.Fields.List {
		fields, err := ps.parseField(f, name, depth)
		if err != nil {
			return nil, err
		}
		e.fields = append(e.fields, fields...)
	}
	if len(e.fields) == 0 {
		return nil, fmt.Errorf("%s: %s has no field tagged wre: it cannot be the element of %s's list", ps.fset.Position(st.Pos()), name, owner)
	}
	ps.elements[name] = e
	return e, nil
}

// decl is the element projection as a records kind spells it.
func (e *element) decl() string {
	parts := make([]string, len(e.fields))
	for i, f := range e.fields {
		parts[i] = f.path + ":" + f.kind
	}
	return strings.Join(parts, ",")
}

func exprString(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.SelectorExpr:
		return exprString(t.X) + "." + t.Sel.Name
	case *ast.ArrayType:
		if t.Len == nil {
			return "[]" + exprString(t.Elt)
		}
	case *ast.StarExpr:
		return "*" + exprString(t.X)
	}
	return fmt.Sprintf("%T", e)
}

func render(pkg string, resources []resource, elements map[string]*element) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by wre build (guest-sdk/lean/leangen). DO NOT EDIT.\n\npackage %s\n\n", pkg)
	b.WriteString("import (\n\t\"github.com/wre-dev/wre/guest-sdk/abi/flat\"\n\t\"github.com/wre-dev/wre/guest-sdk/lean\"\n)\n")
	for _, r := range resources {
		v := "wreProjection" + r.typeName
		fmt.Fprintf(&b, "\n// %s is the projection of %s: %s.%s/%s.\n", v, r.typeName, r.resource, r.group, r.version)
		fmt.Fprintf(&b, "var %s = lean.Declare(&lean.Projection{Group: %q, Version: %q, Resource: %q, Kind: %q, Fields: []string{\n", v, r.group, r.version, r.resource, r.kind)
		for _, f := range metaFields {
			fmt.Fprintf(&b, "\t%q,\n", f)
		}
		for _, f := range r.fields {
			fmt.Fprintf(&b, "\t%q,\n", f.path+":"+f.kind)
		}
		b.WriteString("}})\n")
		n := len(metaFields) + len(r.fields)
		fmt.Fprintf(&b, "\n// WreProjection returns the projection %s is decoded from.\nfunc (*%s) WreProjection() *lean.Projection { return %s }\n", r.typeName, r.typeName, v)
		fmt.Fprintf(&b, "\n// WreDecode sets o from a record of its projection.\nfunc (o *%s) WreDecode(r flat.Record) {\n\to.Meta.DecodeMeta(r)\n", r.typeName)
		renderDecode(&b, r.fields, len(metaFields))
		b.WriteString("}\n")
		fmt.Fprintf(&b, "\n// WreEncode writes o as a record of its projection.\nfunc (o *%s) WreEncode(b *flat.Builder) {\n\tb.Reset(%d)\n\to.Meta.EncodeMeta(b)\n", r.typeName, n)
		renderEncode(&b, r.fields, len(metaFields))
		b.WriteString("}\n")
	}
	names := make([]string, 0, len(elements))
	for name := range elements {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		e := elements[name]
		fmt.Fprintf(&b, "\n// wreDecode sets o from an element record of a records field.\nfunc (o *%s) wreDecode(r flat.Record) {\n", name)
		renderDecode(&b, e.fields, 0)
		b.WriteString("}\n")
		fmt.Fprintf(&b, "\n// wreEncode writes o as an element record of a records field.\nfunc (o *%s) wreEncode(b *flat.Builder) {\n\tb.Reset(%d)\n", name, len(e.fields))
		renderEncode(&b, e.fields, 0)
		b.WriteString("}\n")
	}
	return format.Source(b.Bytes())
}

// renderDecode writes the statements that decode fields from slots first, first+1, ...
func renderDecode(b *bytes.Buffer, fields []field, first int) {
	for i, f := range fields {
		slot := i + first
		switch f.goType {
		case "string":
			fmt.Fprintf(b, "\to.%s = r.String(%d)\n", f.goName, slot)
		case "int64":
			fmt.Fprintf(b, "\to.%s = r.Int(%d)\n", f.goName, slot)
		case "int", "int32":
			fmt.Fprintf(b, "\to.%s = %s(r.Int(%d))\n", f.goName, f.goType, slot)
		case "bool":
			fmt.Fprintf(b, "\to.%s = r.Bool(%d)\n", f.goName, slot)
		case "lean.Map":
			fmt.Fprintf(b, "\to.%s = lean.DecodeMap(r, %d)\n", f.goName, slot)
		case "lean.List":
			fmt.Fprintf(b, "\to.%s = lean.DecodeList(r, %d)\n", f.goName, slot)
		case "[]byte":
			fmt.Fprintf(b, "\to.%s = r.Bytes(%d)\n", f.goName, slot)
		default: // []E
			fmt.Fprintf(b, "\to.%s = nil\n\tif l := r.List(%d); l.Len() > 0 {\n\t\to.%s = make(%s, l.Len())\n\t\tfor j := range o.%s {\n\t\t\to.%s[j].wreDecode(l.Record(j))\n\t\t}\n\t}\n",
				f.goName, slot, f.goName, f.goType, f.goName, f.goName)
		}
	}
}

// renderEncode writes the statements that encode fields into slots first, first+1, ...
func renderEncode(b *bytes.Buffer, fields []field, first int) {
	for i, f := range fields {
		slot := i + first
		switch f.goType {
		case "string":
			fmt.Fprintf(b, "\tb.SetString(%d, o.%s)\n", slot, f.goName)
		case "int64":
			fmt.Fprintf(b, "\tb.SetInt(%d, o.%s)\n", slot, f.goName)
		case "int", "int32":
			fmt.Fprintf(b, "\tb.SetInt(%d, int64(o.%s))\n", slot, f.goName)
		case "bool":
			fmt.Fprintf(b, "\tb.SetBool(%d, o.%s)\n", slot, f.goName)
		case "lean.Map", "lean.List":
			fmt.Fprintf(b, "\to.%s.Encode(b, %d)\n", f.goName, slot)
		case "[]byte":
			fmt.Fprintf(b, "\tb.SetBytes(%d, o.%s)\n", slot, f.goName)
		default: // []E
			fmt.Fprintf(b, "\tb.SetRecords(%d, len(o.%s), func(j int, e *flat.Builder) { o.%s[j].wreEncode(e) })\n", slot, f.goName, f.goName)
		}
	}
}
