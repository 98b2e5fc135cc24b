package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/fixture"
	"github.com/wre-dev/wre/host/reconcile"
)

// caseReport is what running a case produced and what failed in it.
type caseReport struct {
	Name       string            `json:"name"`
	Source     string            `json:"source"`
	Passed     bool              `json:"passed"`
	Failures   []string          `json:"failures,omitempty"`
	Reconciles []reconcileReport `json:"reconciles"`
	Writes     []writeReport     `json:"writes"`
	Events     []string          `json:"events"`
	Objects    []map[string]any  `json:"objects"`
	Deleted    []string          `json:"deleted,omitempty"`
	duration   time.Duration
}

type reconcileReport struct {
	Request      string `json:"request"`
	RequeueAfter string `json:"requeueAfter"`
	Error        string `json:"error,omitempty"`
}

type writeReport struct {
	Verb      string `json:"verb"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	PatchType string `json:"patchType,omitempty"`
	Body      any    `json:"body,omitempty"`
}

func (r *caseReport) passed() bool { return len(r.Failures) == 0 }

func (r *caseReport) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// run runs a resolved case in a fresh fake cluster and checks it.
func (c *testCase) run(ctx context.Context, rt *host.Runtime, compiled *host.CompiledModule, mod *testModule) *caseReport {
	start := time.Now()
	r := &caseReport{Name: c.Name, Source: c.source, Reconciles: []reconcileReport{}, Writes: []writeReport{}, Events: []string{}, Objects: []map[string]any{}}
	defer func() { r.duration, r.Passed = time.Since(start), r.passed() }()
	cluster, err := fixture.NewCluster(c.fixtures, c.listKinds, c.cached)
	if err != nil {
		r.fail("%v", err)
		return r
	}
	opts := mod.opts
	if mod.manifest == nil {
		opts.Primary, opts.PrimaryKind = cluster.Resource(c.primary), c.primary.Kind
	}
	m, err := rt.NewModule(ctx, compiled, cluster.Connect(opts))
	if err != nil {
		r.fail("%v", err)
		return r
	}
	defer m.Close(context.WithoutCancel(ctx))
	for _, req := range c.requests {
		res, err := m.Reconcile(ctx, req)
		rr := reconcileReport{Request: req.String(), RequeueAfter: res.RequeueAfter.String()}
		if err != nil {
			rr.Error = err.Error()
		}
		r.Reconciles = append(r.Reconciles, rr)
		c.checkReconcile(r, rr, res)
	}
	r.Events = append(r.Events, cluster.Events()...)
	c.collectWrites(ctx, r, cluster)
	c.checkObjects(ctx, r, cluster)
	c.checkEvents(r)
	c.checkWrites(r)
	return r
}

func (c *testCase) checkReconcile(r *caseReport, rr reconcileReport, res reconcile.Result) {
	want := c.Expect.Error
	switch {
	case want == "" && rr.Error != "":
		r.fail("reconcile %s: unexpected error: %s", rr.Request, rr.Error)
	case want != "" && rr.Error == "":
		r.fail("reconcile %s: no error, want one containing %q (expect.error)", rr.Request, want)
	case want != "" && !strings.Contains(rr.Error, want):
		r.fail("reconcile %s: error %q does not contain %q (expect.error)", rr.Request, rr.Error, want)
	case rr.Error == "" && c.Expect.Result != nil && res.RequeueAfter != c.Expect.Result.RequeueAfter.Duration:
		r.fail("reconcile %s: expect.result.requeueAfter: got %s, want %s", rr.Request, res.RequeueAfter, c.Expect.Result.RequeueAfter.Duration)
	}
}

// collectWrites reports the writes and the resulting state of each object
// written.
func (c *testCase) collectWrites(ctx context.Context, r *caseReport, cluster *fixture.Cluster) {
	type key struct {
		gvr       schema.GroupVersionResource
		namespace string
		name      string
	}
	var written []key
	for _, w := range cluster.Writes() {
		resource := w.Resource.GroupResource().String()
		if w.Subresource != "" {
			resource += "/" + w.Subresource
		}
		wr := writeReport{Verb: w.Verb, Resource: resource, Namespace: w.Namespace, Name: w.Name, PatchType: string(w.PatchType)}
		if len(w.Body) > 0 {
			var body any
			if err := yaml.Unmarshal(w.Body, &body); err != nil {
				body = string(w.Body)
			}
			wr.Body = body
		}
		r.Writes = append(r.Writes, wr)
		if k := (key{w.Resource, w.Namespace, w.Name}); w.Name != "" && !slices.Contains(written, k) {
			written = append(written, k)
		}
	}
	for _, k := range written {
		u, err := cluster.Get(ctx, k.gvr, k.namespace, k.name)
		switch {
		case apierrors.IsNotFound(err):
			r.Deleted = append(r.Deleted, fmt.Sprintf("%s %s", k.gvr.GroupResource(), objectKey(k.namespace, k.name)))
		case err != nil:
			r.fail("read %s %s: %v", k.gvr.GroupResource(), objectKey(k.namespace, k.name), err)
		default:
			r.Objects = append(r.Objects, u.Object)
		}
	}
}

func (c *testCase) checkObjects(ctx context.Context, r *caseReport, cluster *fixture.Cluster) {
	for i, want := range c.expected {
		what := fmt.Sprintf("expect.objects[%d] %s %s", i, want.GetKind(), objectKey(want.GetNamespace(), want.GetName()))
		got, err := cluster.Get(ctx, cluster.Resource(want.GroupVersionKind()), want.GetNamespace(), want.GetName())
		if err != nil {
			r.fail("%s: %s", what, notFoundOr(err))
			continue
		}
		for _, d := range diffSubset("", normalize(want.Object), normalize(got.Object)) {
			r.fail("%s: %s", what, d)
		}
	}
	for i, gone := range c.absent {
		_, err := cluster.Get(ctx, cluster.Resource(gone.GroupVersionKind()), gone.GetNamespace(), gone.GetName())
		if err == nil {
			r.fail("expect.absent[%d] %s %s: still exists", i, gone.GetKind(), objectKey(gone.GetNamespace(), gone.GetName()))
		}
	}
}

func notFoundOr(err error) string {
	if apierrors.IsNotFound(err) {
		return "not found"
	}
	return err.Error()
}

// checkEvents matches each expected event, in order, within a later
// recorded event than the previous one.
func (c *testCase) checkEvents(r *caseReport) {
	if c.Expect.Events == nil {
		return
	}
	want := *c.Expect.Events
	if len(want) == 0 && len(r.Events) > 0 {
		r.fail("expect.events: want none, got %q", r.Events)
		return
	}
	next := 0
	for i, w := range want {
		j := slices.IndexFunc(r.Events[next:], func(e string) bool { return strings.Contains(e, w) })
		if j < 0 {
			r.fail("expect.events[%d] %q: no matching event (expected events match in order); got %q", i, w, r.Events)
			return
		}
		next += j + 1
	}
}

// checkWrites compares the writes, as -v prints them, with expect.writes.
func (c *testCase) checkWrites(r *caseReport) {
	if c.Expect.Writes == nil {
		return
	}
	got := make([]string, len(r.Writes))
	for i, w := range r.Writes {
		got[i] = w.String()
	}
	if !slices.Equal(got, *c.Expect.Writes) {
		r.fail("expect.writes: got %q, want %q", got, *c.Expect.Writes)
	}
}

// String is "<verb> <resource>[/<subresource>] [<namespace>/]<name>".
func (w writeReport) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", w.Verb, w.Resource, objectKey(w.Namespace, w.Name)))
}

func objectKey(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// normalize gives numbers one representation (float64), as JSON does.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// diffSubset lists where got does not match want: every field of a want map
// must be equal in got (a null one must be absent), a want list must have as
// many items as got and each must match.
func diffSubset(path string, want, got any) []string {
	show := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	at := path
	if at == "" {
		at = "(object)"
	}
	switch w := want.(type) {
	case nil:
		if got != nil {
			return []string{fmt.Sprintf("%s: got %s, want it absent", at, show(got))}
		}
		return nil
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an object", at, show(got))}
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var out []string
		for _, k := range keys {
			p := path + "." + k
			if !plainKey.MatchString(k) {
				p = path + "[" + show(k) + "]"
			} else if path == "" {
				p = k
			}
			gv, present := g[k]
			if !present && w[k] != nil {
				out = append(out, fmt.Sprintf("%s: missing, want %s", p, show(w[k])))
				continue
			}
			out = append(out, diffSubset(p, w[k], gv)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want a list", at, show(got))}
		}
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %d items, want %d: got %s", at, len(g), len(w), show(got))}
		}
		var out []string
		for i := range w {
			out = append(out, diffSubset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	default:
		if show(want) != show(got) {
			return []string{fmt.Sprintf("%s: got %s, want %s", at, show(got), show(want))}
		}
		return nil
	}
}

// print writes the report in the format of f.
func (r *caseReport) print(w io.Writer, f testFlags) error {
	if f.output == "yaml" {
		out, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "---\n%s", out)
		return err
	}
	status := "PASS"
	if !r.passed() {
		status = "FAIL"
	}
	name := r.Name
	if name != r.Source {
		name += " (" + r.Source + ")"
	}
	fmt.Fprintf(w, "%s  %s  %s\n", status, name, r.duration.Round(time.Millisecond))
	if f.verbose {
		r.printDetails(w)
	}
	for _, fl := range r.Failures {
		fmt.Fprintf(w, "      %s\n", fl)
	}
	return nil
}

func (r *caseReport) printDetails(w io.Writer) {
	for _, rr := range r.Reconciles {
		outcome := "no requeue"
		switch {
		case rr.Error != "":
			outcome = "error: " + rr.Error
		case rr.RequeueAfter != "0s":
			outcome = "requeue after " + rr.RequeueAfter
		}
		fmt.Fprintf(w, "      reconcile %s: %s\n", rr.Request, outcome)
	}
	for _, wr := range r.Writes {
		line := wr.String()
		if wr.PatchType != "" {
			line += " (" + wr.PatchType + ")"
		}
		fmt.Fprintf(w, "      write: %s\n", line)
	}
	for _, e := range r.Events {
		fmt.Fprintf(w, "      event: %s\n", e)
	}
	for _, obj := range r.Objects {
		out, err := yaml.Marshal(obj)
		if err != nil {
			continue
		}
		u := unstructured.Unstructured{Object: obj}
		fmt.Fprintf(w, "      object %s %s:\n        %s\n", u.GetKind(), objectKey(u.GetNamespace(), u.GetName()),
			strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "\n        "))
	}
	for _, d := range r.Deleted {
		fmt.Fprintf(w, "      deleted: %s\n", d)
	}
}
