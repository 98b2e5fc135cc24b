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
// lean.List (list of strings), []byte (the subtree as JSON).
package leangen

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
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
}

type resource struct {
	typeName                       string
	group, version, resource, kind string
	fields                         []field
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
	for _, fn := range names {
		base := filepath.Base(fn)
		if strings.HasSuffix(base, "_test.go") || base == FileName {
			continue
		}
		f, err := parser.ParseFile(fset, fn, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", dir, err)
		}
		if pkgName == "" {
			pkgName = f.Name.Name
		}
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
				r, ok, err := parseResource(fset, ts, doc)
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
	return render(pkgName, resources)
}

func parseResource(fset *token.FileSet, ts *ast.TypeSpec, doc *ast.CommentGroup) (resource, bool, error) {
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
		path := ""
		if f.Tag != nil {
			path = reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("wre")
		}
		if path == "" {
			continue // not projected: the module's own bookkeeping
		}
		kind, ok := map[string]string{"string": "string", "int": "int", "int32": "int", "int64": "int", "bool": "bool",
			"lean.Map": "map", "lean.List": "strings", "[]byte": "bytes"}[typ]
		if !ok {
			return r, false, fmt.Errorf("%s: field %s: type %s cannot be projected (want string, int, int32, int64, bool, lean.Map, lean.List or []byte)",
				fset.Position(f.Pos()), f.Names[0].Name, typ)
		}
		for _, name := range f.Names {
			r.fields = append(r.fields, field{goName: name.Name, goType: typ, path: path, kind: kind})
		}
	}
	if len(st.Fields.List) == 0 || len(st.Fields.List[0].Names) != 0 {
		return r, false, fmt.Errorf("%s: %s must embed lean.Meta first", pos, ts.Name.Name)
	}
	return r, true, nil
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

func render(pkg string, resources []resource) ([]byte, error) {
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
		for i, f := range r.fields {
			slot := i + len(metaFields)
			switch f.goType {
			case "string":
				fmt.Fprintf(&b, "\to.%s = r.String(%d)\n", f.goName, slot)
			case "int64":
				fmt.Fprintf(&b, "\to.%s = r.Int(%d)\n", f.goName, slot)
			case "int", "int32":
				fmt.Fprintf(&b, "\to.%s = %s(r.Int(%d))\n", f.goName, f.goType, slot)
			case "bool":
				fmt.Fprintf(&b, "\to.%s = r.Bool(%d)\n", f.goName, slot)
			case "lean.Map":
				fmt.Fprintf(&b, "\to.%s = lean.DecodeMap(r, %d)\n", f.goName, slot)
			case "lean.List":
				fmt.Fprintf(&b, "\to.%s = lean.DecodeList(r, %d)\n", f.goName, slot)
			case "[]byte":
				fmt.Fprintf(&b, "\to.%s = r.Bytes(%d)\n", f.goName, slot)
			}
		}
		b.WriteString("}\n")
		fmt.Fprintf(&b, "\n// WreEncode writes o as a record of its projection.\nfunc (o *%s) WreEncode(b *flat.Builder) {\n\tb.Reset(%d)\n\to.Meta.EncodeMeta(b)\n", r.typeName, n)
		for i, f := range r.fields {
			slot := i + len(metaFields)
			switch f.goType {
			case "string":
				fmt.Fprintf(&b, "\tb.SetString(%d, o.%s)\n", slot, f.goName)
			case "int64":
				fmt.Fprintf(&b, "\tb.SetInt(%d, o.%s)\n", slot, f.goName)
			case "int", "int32":
				fmt.Fprintf(&b, "\tb.SetInt(%d, int64(o.%s))\n", slot, f.goName)
			case "bool":
				fmt.Fprintf(&b, "\tb.SetBool(%d, o.%s)\n", slot, f.goName)
			case "lean.Map", "lean.List":
				fmt.Fprintf(&b, "\to.%s.Encode(b, %d)\n", f.goName, slot)
			case "[]byte":
				fmt.Fprintf(&b, "\tb.SetBytes(%d, o.%s)\n", slot, f.goName)
			}
		}
		b.WriteString("}\n")
	}
	return format.Source(b.Bytes())
}
