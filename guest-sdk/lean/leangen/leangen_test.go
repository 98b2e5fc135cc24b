package leangen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wre-dev/wre/guest-sdk/lean/leangen"
)

// TestGeneratedFilesAreCurrent regenerates the codecs of every lean module
// in the repository and compares them with the committed files: `wre build`
// must have been run after the last change of a +wre:resource type.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	dirs, err := filepath.Glob("../../../modules/*")
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, "../../../host/testdata/guests/lean", "../../../modules/testdata/getbench2")
	found := 0
	for _, dir := range dirs {
		src, err := leangen.Source(dir)
		if err != nil {
			if st, statErr := os.Stat(dir); statErr == nil && !st.IsDir() {
				continue
			}
			t.Fatalf("%s: %v", dir, err)
		}
		committed, readErr := os.ReadFile(filepath.Join(dir, leangen.FileName))
		switch {
		case src == nil && readErr == nil:
			t.Errorf("%s: %s exists but no type is marked +wre:resource", dir, leangen.FileName)
		case src == nil:
			continue
		case readErr != nil:
			t.Errorf("%s: %v (run wre build)", dir, readErr)
		case string(committed) != string(src):
			t.Errorf("%s: %s is stale: run wre build %s", dir, leangen.FileName, dir)
		}
		found++
	}
	if found < 2 {
		t.Fatalf("found %d lean modules, want at least status-sync and the host's test guest", found)
	}
}

func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestGenerate(t *testing.T) {
	dir := write(t, map[string]string{"main.go": `package main

import "github.com/wre-dev/wre/guest-sdk/lean"

// +wre:resource group=apps version=v1 resource=deployments kind=Deployment
type Deployment struct {
	lean.Meta
	Replicas int32     ` + "`wre:\"spec.replicas\"`" + `
	Labels   lean.Map  ` + "`wre:\"metadata.labels\"`" + `
	Images   lean.List ` + "`wre:\"spec.images\"`" + `
	Paused   bool      ` + "`wre:\"spec.paused\"`" + `
	Selector []byte    ` + "`wre:\"spec.selector\"`" + `
	cache    string
}
`})
	ok, err := leangen.Generate(dir)
	if err != nil || !ok {
		t.Fatalf("Generate: %v, %v", ok, err)
	}
	out, err := os.ReadFile(filepath.Join(dir, leangen.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment"`,
		`"spec.replicas:int"`, `"metadata.labels:map"`, `"spec.images:strings"`, `"spec.paused:bool"`, `"spec.selector:bytes"`,
		"o.Replicas = int32(r.Int(6))", "o.Labels = lean.DecodeMap(r, 7)", "o.Images = lean.DecodeList(r, 8)",
		"o.Paused = r.Bool(9)", "o.Selector = r.Bytes(10)", "b.Reset(11)", "b.SetInt(6, int64(o.Replicas))",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("generated code lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "cache") {
		t.Error("an untagged field was projected")
	}

	// Without marked types the generated file goes away.
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := leangen.Generate(dir); err != nil || ok {
		t.Fatalf("Generate without types: %v, %v", ok, err)
	}
	if _, err := os.Stat(filepath.Join(dir, leangen.FileName)); !os.IsNotExist(err) {
		t.Fatalf("stale generated file left: %v", err)
	}
}

func TestGenerateRecords(t *testing.T) {
	dir := write(t, map[string]string{"main.go": `package main

import "github.com/wre-dev/wre/guest-sdk/lean"

// +wre:resource group=apps version=v1 resource=deployments kind=Deployment
type Deployment struct {
	lean.Meta
	Containers []Container ` + "`wre:\"spec.template.spec.containers\"`" + `
}

type Container struct {
	Name  string ` + "`wre:\"name\"`" + `
	Ports []Port ` + "`wre:\"ports\"`" + `
	note  string
}

type Port struct {
	Number int32 ` + "`wre:\"containerPort\"`" + `
}
`})
	src, err := leangen.Source(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"spec.template.spec.containers:records{name:string,ports:records{containerPort:int}}"`,
		"o.Containers[j].wreDecode(l.Record(j))",
		"b.SetRecords(6, len(o.Containers), func(j int, e *flat.Builder) { o.Containers[j].wreEncode(e) })",
		"func (o *Container) wreDecode(r flat.Record) {", "o.Name = r.String(0)", "b.Reset(2)",
		"func (o *Port) wreEncode(b *flat.Builder) {", "b.SetInt(0, int64(o.Number))",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("generated code lacks %q:\n%s", want, src)
		}
	}
}

func TestGenerateRefusesBadTypes(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"no Meta", "type W struct {\n\tX string `wre:\"spec.x\"`\n}", "must embed lean.Meta first"},
		{"unsupported type", "type W struct {\n\tlean.Meta\n\tX float64 `wre:\"spec.x\"`\n}", "type float64 cannot be projected"},
		{"unknown key", "type W struct{ lean.Meta }", `unknown key "plural"`},
		{"missing kind", "type W struct{ lean.Meta }", "needs version=, resource= and kind="},
		{"not a struct", "type W int", "W is not a struct"},
		{"slice of a non-struct", "type W struct {\n\tlean.Meta\n\tX []int `wre:\"spec.x\"`\n}", "type []int cannot be projected"},
		{"element without tags", "type W struct {\n\tlean.Meta\n\tX []E `wre:\"spec.x\"`\n}\ntype E struct{ a int }", "E has no field tagged wre"},
		{"elements too deep", "type W struct {\n\tlean.Meta\n\tX []E `wre:\"spec.x\"`\n}\ntype E struct{ Y []E `wre:\"y\"` }", "nested deeper than 4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			marker := "// +wre:resource version=v1 resource=ws kind=W\n"
			switch c.name {
			case "unknown key":
				marker = "// +wre:resource version=v1 plural=ws kind=W\n"
			case "missing kind":
				marker = "// +wre:resource version=v1 resource=ws\n"
			}
			dir := write(t, map[string]string{"main.go": "package main\n\nimport \"github.com/wre-dev/wre/guest-sdk/lean\"\n\nvar _ lean.Meta\n\n" + marker + c.src + "\n"})
			_, err := leangen.Generate(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
