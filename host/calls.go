package host

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

// hostCall implements wre.call(op, req_ptr, req_len) -> packed response.
func (rt *Runtime) hostCall(ctx context.Context, mod api.Module, stack []uint64) {
	st, op, resp, start := rt.serveCall(ctx, mod, stack)
	if size := resp.Size(); size > rt.opts.MaxMessageSize {
		resp = abi.Response{Status: abi.Status{
			Code: http.StatusRequestEntityTooLarge, Reason: string(metav1.StatusReasonRequestEntityTooLarge),
			Message: fmt.Sprintf("response of %d bytes exceeds the maximum message size %d; use limit and continue", size, rt.opts.MaxMessageSize),
		}}
	}
	rt.observeCall(st, op, resp.Status, start)
	// A call that outlived its reconcile (typically an API request cut by the
	// timeout) ends the guest here rather than answering it.
	abortIfDone(ctx)
	stack[0] = st.inst.write(ctx, resp.AppendTo(make([]byte, 0, resp.Size())))
}

// serveCall decodes the arguments of a wre.call of any ABI version, serves
// it and returns what the version's implementation encodes and observes.
func (rt *Runtime) serveCall(ctx context.Context, mod api.Module, stack []uint64) (*callState, abi.Op, abi.Response, time.Time) {
	op, ptr, n := abi.Op(api.DecodeU32(stack[0])), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	st := stateOf(ctx)
	if st == nil {
		panic(&protocolError{"wre.call outside a reconcile run by the host"})
	}
	abortIfDone(ctx)
	start := time.Now()
	return st, op, st.m.serve(ctx, st, op, mod, ptr, n), start
}

// observeCall counts a served host call in the metrics and logs a failure.
func (rt *Runtime) observeCall(st *callState, op abi.Op, status abi.Status, start time.Time) {
	opName := op.String()
	rt.opts.Metrics.HostCallDuration.WithLabelValues(st.m.opts.Name, opName).Observe(time.Since(start).Seconds())
	rt.opts.Metrics.HostCalls.WithLabelValues(st.m.opts.Name, opName, strconv.Itoa(int(status.Code))).Inc()
	st.reads.recordCall(op, status)
	if !status.OK() {
		st.logger().V(1).Info("host call failed", "op", opName, "code", status.Code, "reason", status.Reason, "message", status.Message)
	}
}

// hostLog implements wre.log(level, ptr, len).
func (rt *Runtime) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := abi.Level(api.DecodeU32(stack[0])), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	st := stateOf(ctx)
	if st == nil {
		return
	}
	abortIfDone(ctx)
	if !st.inst.logs.take(int(min(n, maxLogLine))) {
		return
	}
	if uint64(ptr)+uint64(n) > uint64(mod.Memory().Size()) {
		st.logger().Error(nil, "guest log line outside memory dropped", "ptr", ptr, "len", n)
		return
	}
	b, _ := read(mod, ptr, min(n, maxLogLine))
	msg := string(b)
	switch level {
	case abi.LevelError:
		st.logger().Error(nil, msg)
	case abi.LevelDebug:
		st.logger().V(1).Info(msg)
	case abi.LevelTrace:
		st.logger().V(2).Info(msg)
	default:
		st.logger().Info(msg)
	}
}

// call is one decoded host call.
type call struct {
	m   *Module
	st  *callState
	op  abi.Op
	req abi.Request
	gvr schema.GroupVersionResource
	gvk schema.GroupVersionKind
	// v2 marks a call of an ABI v2 module: objects travel in proj, or as
	// JSON when proj is nil.
	v2   bool
	proj *projection
}

// opVerbs gives the permission verb of each object operation and whether it
// targets the status subresource.
var opVerbs = map[abi.Op]struct {
	verb   string
	status bool
	named  bool
}{
	abi.OpGet: {"get", false, true}, abi.OpList: {"list", false, false},
	abi.OpCreate: {"create", false, false}, abi.OpUpdate: {"update", false, false},
	abi.OpPatch: {"patch", false, true}, abi.OpDelete: {"delete", false, true},
	abi.OpStatusUpdate: {"update", true, false}, abi.OpStatusPatch: {"patch", true, true},
	abi.OpEvent: {"get", false, true},
	abi.OpApply: {"patch", false, true}, abi.OpStatusApply: {"patch", true, true},
}

// serve decodes, checks and runs one host call. It never panics on guest input.
func (m *Module) serve(ctx context.Context, st *callState, op abi.Op, mod api.Module, ptr, n uint32) abi.Response {
	if op.String() == "unknown" {
		return abi.Response{Status: badRequest(fmt.Sprintf("unknown op %d", uint32(op)))}
	}
	if int64(n) > int64(m.rt.opts.MaxMessageSize) {
		return abi.Response{Status: abi.Status{Code: http.StatusRequestEntityTooLarge, Reason: string(metav1.StatusReasonRequestEntityTooLarge),
			Message: fmt.Sprintf("request of %d bytes exceeds the maximum message size %d", n, m.rt.opts.MaxMessageSize)}}
	}
	b, ok := read(mod, ptr, n)
	if !ok {
		return abi.Response{Status: badRequest(fmt.Sprintf("request (%#x, %d) is outside memory of %d bytes", ptr, n, mod.Memory().Size()))}
	}
	return m.handle(ctx, st, op, b)
}

// handle decodes and runs the request b of a known op; b is guest memory and
// is not retained.
func (m *Module) handle(ctx context.Context, st *callState, op abi.Op, b []byte) abi.Response {
	c := &call{m: m, st: st, op: op, v2: m.projected}
	if err := c.req.Unmarshal(b); err != nil {
		return abi.Response{Status: badRequest(err.Error())}
	}
	switch {
	case op == abi.OpConfig:
		return abi.Response{Status: abi.Status{Code: http.StatusOK}, ContentType: m.opts.ConfigContentType, Body: append([]byte{}, m.opts.Config...)}
	case op >= abi.OpDeclare && !c.v2:
		return abi.Response{Status: badRequest(op.String() + " needs ABI v2")}
	case op == abi.OpDeclare && st.reconciling:
		return abi.Response{Status: badRequest("declare is only served during _initialize")}
	case op == abi.OpDeclare:
		return m.declare(st.inst, &c.req)
	case !st.reconciling:
		return abi.Response{Status: badRequest(op.String() + " is only served inside wre_reconcile")}
	}
	if c.v2 && c.req.Projection != 0 {
		p, ok := m.projection(c.req.Projection)
		if !ok {
			return abi.Response{Status: badRequest(fmt.Sprintf("projection %d is not declared", c.req.Projection))}
		}
		c.proj = p
	}
	resp, err := c.run(ctx)
	if err != nil {
		return abi.Response{Status: statusOf(err)}
	}
	return resp
}

func (c *call) run(ctx context.Context) (abi.Response, error) {
	req := &c.req
	if c.op == abi.OpEvent && req.Name == "" {
		req.Group, req.Version, req.Resource = c.m.opts.Primary.Group, c.m.opts.Primary.Version, c.m.opts.Primary.Resource
		req.Kind, req.Namespace, req.Name = c.m.opts.PrimaryKind, c.st.ns, c.st.name
	}
	c.gvr = schema.GroupVersionResource{Group: req.Group, Version: req.Version, Resource: req.Resource}
	c.gvk = c.gvr.GroupVersion().WithKind(req.Kind)
	v := opVerbs[c.op]
	switch {
	case req.Version == "" || req.Resource == "" || req.Kind == "":
		return abi.Response{}, apierrors.NewBadRequest("version, resource and kind are required")
	case v.named && req.Name == "":
		return abi.Response{}, apierrors.NewBadRequest(c.op.String() + " requires a name")
	case req.FieldManager != "" && req.FieldManager != c.m.opts.Name:
		return abi.Response{}, apierrors.NewBadRequest(fmt.Sprintf("field manager %q: writes always use the module name %q", req.FieldManager, c.m.opts.Name))
	}
	resource := req.Resource
	if v.status {
		resource += "/status"
	}
	if !c.m.opts.Permissions.Allows(v.verb, req.Group, resource, req.Namespace) {
		return abi.Response{}, apierrors.NewForbidden(schema.GroupResource{Group: req.Group, Resource: resource}, req.Name,
			fmt.Errorf("module %q is not granted %q in namespace %q", c.m.opts.Name, v.verb, req.Namespace))
	}
	switch c.op {
	case abi.OpGet:
		obj, err := c.get(ctx, req.Name)
		c.m.recordRead(c.st.reads, c.gvr, c.proj, c.req.Namespace, c.req.Name, c.req.Live, obj, err)
		return c.object(http.StatusOK, obj, err)
	case abi.OpList:
		return c.list(ctx)
	case abi.OpCreate, abi.OpUpdate, abi.OpStatusUpdate:
		return c.write(ctx)
	case abi.OpPatch, abi.OpStatusPatch:
		return c.patch(ctx)
	case abi.OpDelete:
		return c.delete(ctx)
	case abi.OpApply, abi.OpStatusApply:
		return c.apply(ctx)
	default: // abi.OpEvent
		return c.event(ctx)
	}
}

func (c *call) client() dynamic.ResourceInterface {
	return c.m.opts.Client.Resource(c.gvr).Namespace(c.req.Namespace)
}

func (c *call) cached() (CacheReader, bool) { return c.m.cached(c.gvr, c.req.Live) }

// cached returns the cache reader of gvr unless live is asked for or gvr is
// not cached.
func (m *Module) cached(gvr schema.GroupVersionResource, live bool) (CacheReader, bool) {
	if live || m.opts.Cache == nil {
		return nil, false
	}
	return m.opts.Cache.Reader(gvr)
}

func (c *call) get(ctx context.Context, name string) (runtime.Object, error) {
	return c.m.get(ctx, c.gvr, c.req.Namespace, name, c.req.Live)
}

// get reads one object from the cache, or from the API server when live or
// not cached.
func (m *Module) get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, live bool) (runtime.Object, error) {
	if r, ok := m.cached(gvr, live); ok {
		return r.Get(ns, name)
	}
	return m.opts.Client.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// objectRef returns a reference to an object for an event, with the UID that
// kubectl describe matches events on.
func (m *Module) objectRef(ctx context.Context, gvr schema.GroupVersionResource, kind, ns, name string, live bool) (*corev1.ObjectReference, error) {
	obj, err := m.get(ctx, gvr, ns, name, live)
	if err != nil {
		return nil, err
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	return &corev1.ObjectReference{
		APIVersion: gvr.GroupVersion().String(), Kind: kind,
		Namespace: acc.GetNamespace(), Name: acc.GetName(), UID: acc.GetUID(), ResourceVersion: acc.GetResourceVersion(),
	}, nil
}

// object answers with obj in the encoding the guest accepts.
func (c *call) object(code int32, obj runtime.Object, err error) (abi.Response, error) {
	if err != nil {
		return abi.Response{}, err
	}
	ct, data, err := c.encode(obj)
	if err != nil {
		return abi.Response{}, err
	}
	return abi.Response{Status: abi.Status{Code: code}, ContentType: ct, Body: data}, nil
}

// encode returns obj as the guest asked: in the call's projection (ABI v2),
// as JSON (ABI v2 without projection) or in the accepted encoding (ABI v1).
func (c *call) encode(obj runtime.Object) (string, []byte, error) {
	switch {
	case c.proj != nil:
		var b flat.Builder
		if err := c.proj.encode(&b, obj); err != nil {
			return "", nil, apierrors.NewInternalError(err)
		}
		return abi.ContentTypeFlat, b.Bytes(), nil
	case c.v2:
		return defaultCodec.encode(obj, c.gvk, abi.ContentTypeJSON)
	default:
		return defaultCodec.encode(obj, c.gvk, c.req.Accept)
	}
}

// apply server-side applies the projected fields of the record in the body
// (ABI v2): the status fields for status_apply, the others for apply. The
// module owns what it applies; conflicts with other managers are forced,
// as controllers do.
func (c *call) apply(ctx context.Context) (abi.Response, error) {
	if c.proj == nil {
		return abi.Response{}, apierrors.NewBadRequest(c.op.String() + " needs a projection")
	}
	if c.proj.gvr != c.gvr {
		return abi.Response{}, apierrors.NewBadRequest(fmt.Sprintf("projection %d is of %s, not %s", c.req.Projection, c.proj.gvr.Resource, c.gvr.Resource))
	}
	rec, err := flat.Parse(c.req.Body)
	if err != nil {
		return abi.Response{}, apierrors.NewBadRequest(err.Error())
	}
	status := c.op == abi.OpStatusApply
	obj, err := c.proj.applyObject(rec, status, c.req.Namespace, c.req.Name)
	if err != nil {
		return abi.Response{}, apierrors.NewBadRequest(err.Error())
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return abi.Response{}, err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: c.m.opts.Name, DryRun: c.dryRun(), Force: &force}
	var sub []string
	if status {
		sub = []string{"status"}
	}
	out, err := c.client().Patch(ctx, c.req.Name, types.ApplyPatchType, data, opts, sub...)
	return c.object(http.StatusOK, out, err)
}

func (c *call) list(ctx context.Context) (abi.Response, error) {
	opts := metav1.ListOptions{LabelSelector: c.req.LabelSelector, FieldSelector: c.req.FieldSelector, Limit: c.req.Limit, Continue: c.req.Continue}
	var objs []runtime.Object
	resp := abi.Response{Status: abi.Status{Code: http.StatusOK}}
	if r, ok := c.cached(); ok {
		var err error
		if objs, resp.Continue, err = r.List(c.req.Namespace, opts); err != nil {
			return abi.Response{}, err
		}
		c.st.reads.recordList(c.gvr, c.proj, c.req.Namespace, opts, objs)
	} else {
		c.st.reads.recordEffect("live list of " + c.gvr.Resource)
		ul, err := c.client().List(ctx, opts)
		if err != nil {
			return abi.Response{}, err
		}
		for i := range ul.Items {
			objs = append(objs, &ul.Items[i])
		}
		resp.Continue, resp.ResourceVersion = ul.GetContinue(), ul.GetResourceVersion()
	}
	resp.Items = make([][]byte, 0, len(objs))
	for _, obj := range objs {
		ct, data, err := c.encode(obj)
		if err != nil {
			return abi.Response{}, err
		}
		resp.ContentType = ct
		resp.Items = append(resp.Items, data)
	}
	return resp, nil
}

// body decodes the object of a create or update and makes its namespace and
// name agree with the request, which is what the permissions were checked on.
func (c *call) body() (*unstructured.Unstructured, error) {
	u, err := defaultCodec.decode(c.req.ContentType, c.req.Body, c.gvk)
	if err != nil {
		return nil, err
	}
	switch ns := u.GetNamespace(); {
	case ns == "":
		u.SetNamespace(c.req.Namespace)
	case ns != c.req.Namespace:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("object namespace %q differs from request namespace %q", ns, c.req.Namespace))
	}
	if c.req.Name != "" && u.GetName() != "" && u.GetName() != c.req.Name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("object name %q differs from request name %q", u.GetName(), c.req.Name))
	}
	return u, nil
}

func (c *call) dryRun() []string {
	if c.req.DryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

func (c *call) write(ctx context.Context) (abi.Response, error) {
	u, err := c.body()
	if err != nil {
		return abi.Response{}, err
	}
	switch c.op {
	case abi.OpCreate:
		out, err := c.client().Create(ctx, u, metav1.CreateOptions{FieldManager: c.m.opts.Name, DryRun: c.dryRun()})
		return c.object(http.StatusCreated, out, err)
	case abi.OpUpdate:
		out, err := c.client().Update(ctx, u, metav1.UpdateOptions{FieldManager: c.m.opts.Name, DryRun: c.dryRun()})
		return c.object(http.StatusOK, out, err)
	default: // abi.OpStatusUpdate
		out, err := c.client().UpdateStatus(ctx, u, metav1.UpdateOptions{FieldManager: c.m.opts.Name, DryRun: c.dryRun()})
		return c.object(http.StatusOK, out, err)
	}
}

var patchTypes = []string{abi.PatchJSON, abi.PatchMerge, abi.PatchStrategicMerge, abi.PatchApply}

func (c *call) patch(ctx context.Context) (abi.Response, error) {
	pt := c.req.PatchType
	if !slices.Contains(patchTypes, pt) {
		return abi.Response{}, apierrors.NewBadRequest(fmt.Sprintf("unknown patch type %q", pt))
	}
	data := c.req.Body
	if pt == abi.PatchApply && c.req.ContentType == abi.ContentTypeProtobuf {
		// Apply configurations are JSON or YAML; a typed object from a Go guest
		// arrives as protobuf and is converted here.
		u, err := c.body()
		if err != nil {
			return abi.Response{}, err
		}
		if data, err = json.Marshal(u.Object); err != nil {
			return abi.Response{}, err
		}
	}
	opts := metav1.PatchOptions{FieldManager: c.m.opts.Name, DryRun: c.dryRun()}
	if pt == abi.PatchApply {
		opts.Force = &c.req.Force
	}
	var sub []string
	if c.op == abi.OpStatusPatch {
		sub = []string{"status"}
	}
	out, err := c.client().Patch(ctx, c.req.Name, types.PatchType(pt), data, opts, sub...)
	return c.object(http.StatusOK, out, err)
}

var propagationPolicies = []metav1.DeletionPropagation{metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground}

func (c *call) delete(ctx context.Context) (abi.Response, error) {
	opts := metav1.DeleteOptions{DryRun: c.dryRun()}
	if c.req.PreconditionUID != "" || c.req.PreconditionResourceVersion != "" {
		opts.Preconditions = &metav1.Preconditions{}
		if c.req.PreconditionUID != "" {
			uid := types.UID(c.req.PreconditionUID)
			opts.Preconditions.UID = &uid
		}
		if c.req.PreconditionResourceVersion != "" {
			opts.Preconditions.ResourceVersion = &c.req.PreconditionResourceVersion
		}
	}
	if p := metav1.DeletionPropagation(c.req.PropagationPolicy); p != "" {
		if !slices.Contains(propagationPolicies, p) {
			return abi.Response{}, apierrors.NewBadRequest(fmt.Sprintf("unknown propagation policy %q", p))
		}
		opts.PropagationPolicy = &p
	}
	if err := c.client().Delete(ctx, c.req.Name, opts); err != nil {
		return abi.Response{}, err
	}
	return abi.Response{Status: abi.Status{Code: http.StatusOK}}, nil
}

func (c *call) event(ctx context.Context) (abi.Response, error) {
	if c.req.EventType != corev1.EventTypeNormal && c.req.EventType != corev1.EventTypeWarning {
		return abi.Response{}, apierrors.NewBadRequest(fmt.Sprintf("event type %q is neither Normal nor Warning", c.req.EventType))
	}
	if c.req.EventReason == "" {
		return abi.Response{}, apierrors.NewBadRequest("event reason is required")
	}
	ref, err := c.m.objectRef(ctx, c.gvr, c.req.Kind, c.req.Namespace, c.req.Name, c.req.Live)
	if err != nil {
		return abi.Response{}, err
	}
	c.m.opts.Recorder.Event(ref, c.req.EventType, c.req.EventReason, c.req.EventMessage)
	return abi.Response{Status: abi.Status{Code: http.StatusOK}}, nil
}
