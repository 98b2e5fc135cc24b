package host

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
	"github.com/wre-dev/wre/host/reconcile"
)

// ReadSet is what one reconcile read through the ABI, each read with a
// fingerprint of exactly what the guest received, and whether the reconcile
// did anything besides reading. Module.ReconcileReads records it and
// Module.Changed checks it against the cache; it is immutable once returned.
type ReadSet struct {
	entries []readEntry
	// effect names the first call that changed something (a write or an
	// event) or whose outcome the read set cannot vouch for (a live read, a
	// paged list, a failed call); "" when there was none.
	effect string
	// gone: the reconciled object was not found.
	gone bool
}

// readEntry is one get (or the primary object) or one list.
type readEntry struct {
	gvr      schema.GroupVersionResource
	ns, name string // the object of a get; name is "" for a list
	list     bool
	labels   string // selectors of a list
	fields   string
	// proj is the ABI v2 projection the objects were sent in; nil means
	// whole objects, fingerprinted by resourceVersion.
	proj  *projection
	found bool      // a get found the object
	fp    uint64    // fingerprint of the object a get found
	items []itemRef // a list's objects, sorted by key
}

// itemRef is one object of a list: "namespace/name" and its fingerprint.
type itemRef struct {
	key string
	fp  uint64
}

// Reusable reports whether the reconcile only read, through the cache: no
// write, no event, no live or paged read, no failed call. Only such a read
// set may be the basis of a skip.
func (rs *ReadSet) Reusable() bool { return rs != nil && rs.effect == "" }

// Effect names the call that makes the read set not Reusable, or "".
func (rs *ReadSet) Effect() string {
	if rs == nil {
		return "no read set"
	}
	return rs.effect
}

// Gone reports that the reconciled object itself was not found: its read
// set is not worth keeping, since only its re-creation (which changes it)
// would reconcile it again.
func (rs *ReadSet) Gone() bool { return rs != nil && rs.gone }

// Len returns the number of gets and lists recorded, the primary included.
func (rs *ReadSet) Len() int { return len(rs.entries) }

// Objects returns the number of object fingerprints held: one per get, one
// per object of each list. Memory grows with it (docs/operations.md).
func (rs *ReadSet) Objects() int {
	n := 0
	for i := range rs.entries {
		if rs.entries[i].list {
			n += len(rs.entries[i].items)
		} else {
			n++
		}
	}
	return n
}

// fpSeed makes fingerprints comparable within the process; they are never
// stored elsewhere.
var fpSeed = maphash.MakeSeed()

// fingerprint returns the fingerprint of obj as the guest receives it in
// proj: a hash of the projected record (its resourceVersion aside), or of the
// resourceVersion when whole objects are sent (proj nil). b is scratch space.
func fingerprint(b *flat.Builder, proj *projection, obj runtime.Object) (uint64, error) {
	if proj == nil {
		acc, err := meta.Accessor(obj)
		if err != nil {
			return 0, err
		}
		return maphash.String(fpSeed, acc.GetResourceVersion()), nil
	}
	if err := proj.encodeSkipping(b, obj, proj.slotOf(resourceVersionPath)); err != nil {
		return 0, err
	}
	return maphash.Bytes(fpSeed, b.Bytes()), nil
}

// resourceVersionPath is left out of projected fingerprints: every change of
// an object changes it, so counting it would make a change to a field the
// module does not read count. Kubernetes makes it opaque; a memoized module
// must not decide on it (docs/modules.md).
var resourceVersionPath = []string{"metadata", "resourceVersion"}

// slotOf returns the slot of the field at path, or -1.
func (p *projection) slotOf(path []string) int {
	for i, f := range p.fields {
		if slices.Equal(f.path, path) {
			return i
		}
	}
	return -1
}

// recordEffect marks rs as not reusable because of what, unless it already is.
func (rs *ReadSet) recordEffect(what string) {
	if rs != nil && rs.effect == "" {
		rs.effect = what
	}
}

// recordGet records a get of ns/name that returned obj or err.
func (rs *ReadSet) recordGet(gvr schema.GroupVersionResource, proj *projection, ns, name string, obj runtime.Object, err error) {
	if rs == nil {
		return
	}
	e := readEntry{gvr: gvr, ns: ns, name: name, proj: proj}
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		rs.recordEffect(fmt.Sprintf("%s: %v", e, err))
		return
	default:
		var b flat.Builder
		fp, err := fingerprint(&b, proj, obj)
		if err != nil {
			rs.recordEffect(fmt.Sprintf("%s: %v", e, err))
			return
		}
		e.found, e.fp = true, fp
	}
	rs.entries = append(rs.entries, e)
}

// recordRead records in rs a get of ns/name that m served (from the cache
// unless live) with obj or err; a read the cache did not serve cannot be
// checked against it and makes rs not reusable.
func (m *Module) recordRead(rs *ReadSet, gvr schema.GroupVersionResource, proj *projection, ns, name string, live bool, obj runtime.Object, err error) {
	if rs == nil {
		return
	}
	if _, ok := m.cached(gvr, live); !ok {
		rs.recordEffect("live get of " + gvr.Resource)
		return
	}
	rs.recordGet(gvr, proj, ns, name, obj, err)
}

// recordList records a list of ns with the selectors of opts that returned objs.
func (rs *ReadSet) recordList(gvr schema.GroupVersionResource, proj *projection, ns string, opts metav1.ListOptions, objs []runtime.Object) {
	if rs == nil {
		return
	}
	e := readEntry{gvr: gvr, ns: ns, list: true, labels: opts.LabelSelector, fields: opts.FieldSelector, proj: proj}
	if opts.Limit > 0 || opts.Continue != "" {
		rs.recordEffect(fmt.Sprintf("%s: paged", e))
		return
	}
	items, err := itemsOf(proj, objs)
	if err != nil {
		rs.recordEffect(fmt.Sprintf("%s: %v", e, err))
		return
	}
	e.items = items
	rs.entries = append(rs.entries, e)
}

// itemsOf returns the sorted keys and fingerprints of objs.
func itemsOf(proj *projection, objs []runtime.Object) ([]itemRef, error) {
	items := make([]itemRef, 0, len(objs))
	var b flat.Builder
	for _, obj := range objs {
		acc, err := meta.Accessor(obj)
		if err != nil {
			return nil, err
		}
		fp, err := fingerprint(&b, proj, obj)
		if err != nil {
			return nil, err
		}
		items = append(items, itemRef{key: objectKey(acc.GetNamespace(), acc.GetName()), fp: fp})
	}
	slices.SortFunc(items, func(a, b itemRef) int { return strings.Compare(a.key, b.key) })
	return items, nil
}

// String names the entry for logs: "get apps/v1 deployments ns/name" or
// "list apps/v1 deployments ns labels=… fields=…".
func (e readEntry) String() string {
	res := e.gvr.Resource
	if e.gvr.Group != "" {
		res += "." + e.gvr.Group
	}
	if !e.list {
		return "get " + res + " " + objectKey(e.ns, e.name)
	}
	s := "list " + res
	if e.ns != "" {
		s += " in " + e.ns
	}
	if e.labels != "" {
		s += " labels=" + e.labels
	}
	if e.fields != "" {
		s += " fields=" + e.fields
	}
	return s
}

// Changed checks rs against the cache as it is now, computing each
// fingerprint the way the host would send the object (same projection), and
// returns why a reconcile must run: the first entry that changed (an object
// changed, was created or deleted; a list gained, lost or changed an object)
// or that cannot be checked (not reusable, resource not cached). It returns
// "" only when every entry is unchanged.
func (m *Module) Changed(rs *ReadSet) string {
	if !rs.Reusable() {
		return "not reusable: " + rs.Effect()
	}
	var b flat.Builder
	for i := range rs.entries {
		if why := m.changed(&b, &rs.entries[i]); why != "" {
			return rs.entries[i].String() + ": " + why
		}
	}
	return ""
}

// changed returns why e no longer holds, or "".
func (m *Module) changed(b *flat.Builder, e *readEntry) string {
	r, ok := m.cached(e.gvr, false)
	if !ok {
		return "not cached"
	}
	if e.list {
		objs, _, err := r.List(e.ns, metav1.ListOptions{LabelSelector: e.labels, FieldSelector: e.fields})
		if err != nil {
			return err.Error()
		}
		items, err := itemsOf(e.proj, objs)
		switch {
		case err != nil:
			return err.Error()
		case !slices.Equal(items, e.items):
			return "objects joined, left or changed"
		}
		return ""
	}
	obj, err := r.Get(e.ns, e.name)
	switch {
	case apierrors.IsNotFound(err) && e.found:
		return "deleted"
	case apierrors.IsNotFound(err):
		return ""
	case err != nil:
		return err.Error()
	case !e.found:
		return "created"
	}
	fp, err := fingerprint(b, e.proj, obj)
	switch {
	case err != nil:
		return err.Error()
	case fp != e.fp:
		return "changed"
	}
	return ""
}

// ReconcileReads runs Reconcile and returns the read set of the reconcile:
// the primary object (as the request carried it, or by resourceVersion), and
// every get and list of the guest, each as the guest received it. It is
// non-nil whenever the guest was entered.
func (m *Module) ReconcileReads(ctx context.Context, req reconcile.Request) (reconcile.Result, *ReadSet, error) {
	rs := &ReadSet{}
	res, err := m.reconcile(ctx, req, rs)
	for i := range rs.entries {
		e := &rs.entries[i]
		if !e.list && !e.found && e.gvr == m.opts.Primary && e.ns == req.Namespace && e.name == req.Name {
			rs.gone = true
		}
	}
	return res, rs, err
}

// recordPrimary records the primary object when the request does not carry
// it in a projection (ABI v1, or v2 without a primary projection): the
// guest may read it in any form, so its resourceVersion stands for it.
func (m *Module) recordPrimary(rs *ReadSet, req reconcile.Request) {
	if rs == nil || (m.projected && m.primaryProjection() != nil) {
		return
	}
	r, ok := m.cached(m.opts.Primary, false)
	if !ok {
		rs.recordEffect("primary " + m.opts.Primary.Resource + " not cached")
		return
	}
	obj, err := r.Get(req.Namespace, req.Name)
	rs.recordGet(m.opts.Primary, nil, req.Namespace, req.Name, obj, err)
}

// recordCall notes a host call's op and status in rs: anything but a get or
// list (config, declare and log aside) is an effect, and so is a failed call
// other than a get that found nothing.
func (rs *ReadSet) recordCall(op abi.Op, status abi.Status) {
	switch op {
	case abi.OpGet, abi.OpList, abi.OpConfig, abi.OpDeclare:
		if !status.OK() && !(op == abi.OpGet && status.Code == http.StatusNotFound) {
			rs.recordEffect(fmt.Sprintf("%s failed: %d %s", op, status.Code, status.Reason))
		}
	default:
		rs.recordEffect(op.String())
	}
}
