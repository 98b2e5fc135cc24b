package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/host/fixture"
	"github.com/wre-dev/wre/host/reconcile"
)

// testCase is one document of a case file.
type testCase struct {
	Name      string              `json:"name,omitempty"`
	Objects   []json.RawMessage   `json:"objects,omitempty"`
	Reconcile requestList         `json:"reconcile,omitempty"`
	Cached    *[]modules.Resource `json:"cached,omitempty"`
	Expect    expectation         `json:"expect,omitempty"`

	source    string // FILE#N
	objects   []*unstructured.Unstructured
	fixtures  []runtime.Object // objects, for fixture.NewCluster
	primary   schema.GroupVersionKind
	requests  []reconcile.Request
	cached    []schema.GroupVersionResource
	listKinds map[schema.GroupVersionResource]string
	expected  []*unstructured.Unstructured
	absent    []*unstructured.Unstructured
}

// expectation is what a case checks after its reconciles.
type expectation struct {
	Result  *resultExpectation `json:"result,omitempty"`
	Error   string             `json:"error,omitempty"`
	Objects []json.RawMessage  `json:"objects,omitempty"`
	Absent  []json.RawMessage  `json:"absent,omitempty"`
	Events  *[]string          `json:"events,omitempty"`
	Writes  *[]string          `json:"writes,omitempty"`
}

type resultExpectation struct {
	RequeueAfter metav1.Duration `json:"requeueAfter"`
}

// requestList is `reconcile`: "namespace/name", "name" or a list of them.
type requestList []string

func (r *requestList) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*r = requestList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return errors.New(`reconcile: want "namespace/name" or a list of them`)
	}
	*r = many
	return nil
}

// loadCases reads a case file or every *.yaml and *.yml file of a directory.
func loadCases(path string) ([]*testCase, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = nil
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	var cases []*testCase
	for _, file := range files {
		cs, err := loadCaseFile(file)
		if err != nil {
			return nil, err
		}
		cases = append(cases, cs...)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	return cases, nil
}

func loadCaseFile(file string) ([]*testCase, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var cases []*testCase
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return cases, nil
		}
		source := fmt.Sprintf("%s#%d", file, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		c := &testCase{source: source}
		if err := yaml.UnmarshalStrict(doc, c); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if c.Name == "" {
			c.Name = source
		}
		if c.objects, err = decodeObjects("objects", c.Objects, true); err == nil {
			if c.expected, err = decodeObjects("expect.objects", c.Expect.Objects, false); err == nil {
				c.absent, err = decodeObjects("expect.absent", c.Expect.Absent, false)
			}
		}
		if err != nil {
			return nil, c.errorf("%w", err)
		}
		cases = append(cases, c)
	}
}

// stripComments drops comment lines, so that a document of comments only
// counts as empty.
func stripComments(doc []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(append(out, l...), '\n')
		}
	}
	return out
}

func (c *testCase) errorf(format string, args ...any) error {
	if c.Name == c.source {
		return fmt.Errorf("%s: %w", c.source, fmt.Errorf(format, args...))
	}
	return fmt.Errorf("%s: case %q: %w", c.source, c.Name, fmt.Errorf(format, args...))
}

// decodeObjects decodes the objects of field, which need apiVersion, kind
// and metadata.name; lists (kind: List, or any kind with items) are
// expanded when expand is set.
func decodeObjects(field string, raws []json.RawMessage, expand bool) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for i, raw := range raws {
		u := &unstructured.Unstructured{}
		if err := utiljson.Unmarshal(raw, &u.Object); err != nil || u.Object == nil {
			return nil, fmt.Errorf("%s[%d]: not an object", field, i)
		}
		if items, ok := u.Object["items"].([]any); ok && expand && u.IsList() {
			raws := make([]json.RawMessage, len(items))
			for j, item := range items {
				raws[j], _ = json.Marshal(item)
			}
			objs, err := decodeObjects(fmt.Sprintf("%s[%d].items", field, i), raws, false)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		for _, f := range []struct{ name, value string }{{"apiVersion", u.GetAPIVersion()}, {"kind", u.GetKind()}, {"metadata.name", u.GetName()}} {
			if f.value == "" {
				return nil, fmt.Errorf("%s[%d]: %s is required", field, i, f.name)
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// resolve settles what a case reconciles and caches, against mod.
func (c *testCase) resolve(mod *testModule) error {
	if mod.manifest != nil {
		c.primary = mod.manifest.For.GVK()
		c.cached, c.listKinds = mod.watched()
	} else {
		if len(c.objects) == 0 {
			return c.errorf("objects: without a manifest the first object names the primary kind, and there is none")
		}
		c.primary = c.objects[0].GroupVersionKind()
		c.cached = []schema.GroupVersionResource{fixture.ResourceFor(c.primary, nil)}
	}
	if c.Cached != nil {
		c.cached = nil
		for i, r := range *c.Cached {
			if r.Version == "" || r.Resource == "" {
				return c.errorf("cached[%d]: version and resource are required", i)
			}
			c.cached = append(c.cached, r.GVR())
		}
	}
	// The fixture refuses duplicates: an input error, found before any run.
	c.fixtures = make([]runtime.Object, len(c.objects))
	for i, u := range c.objects {
		c.fixtures[i] = u
	}
	if _, err := fixture.NewCluster(c.fixtures, c.listKinds, nil); err != nil {
		return c.errorf("objects: %w", err)
	}
	isPrimary := func(u *unstructured.Unstructured) bool { return u.GroupVersionKind() == c.primary }
	if len(c.Reconcile) == 0 {
		for _, u := range c.objects {
			if isPrimary(u) {
				c.requests = append(c.requests, requestOf(u.GetNamespace(), u.GetName()))
			}
		}
		if len(c.requests) == 0 {
			return c.errorf("objects: no %s to reconcile (the primary kind)", c.primary.Kind)
		}
		return nil
	}
	for i, s := range c.Reconcile {
		ns, name, ok := strings.Cut(s, "/")
		if !ok {
			ns, name = "", s
		}
		if name == "" || strings.Contains(name, "/") {
			return c.errorf("reconcile[%d] %q: want namespace/name or name", i, s)
		}
		if !slices.ContainsFunc(c.objects, func(u *unstructured.Unstructured) bool {
			return isPrimary(u) && u.GetNamespace() == ns && u.GetName() == name
		}) {
			return c.errorf("reconcile[%d] %q: objects hold no %s %s", i, s, c.primary.Kind, s)
		}
		c.requests = append(c.requests, requestOf(ns, name))
	}
	return nil
}

func requestOf(namespace, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}}
}
