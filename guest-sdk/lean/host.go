package lean

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

// Transport connects the SDK to a host: the wasm build uses the wre.call and
// wre.log imports; tests use an in-memory host.
type Transport interface {
	// Call performs op with an encoded abi.Request and returns the v2
	// response record, valid until the reconcile returns.
	Call(op abi.Op, req []byte) []byte
	// Log writes one log line at level.
	Log(level abi.Level, msg []byte)
}

// Host gives the reconciler the host's services. It is reused by every
// reconcile of an instance and is not safe for concurrent use.
type Host struct {
	t       Transport
	scratch []byte
	result  flat.Builder
	enc     flat.Builder
}

// NewHost returns a Host over t.
func NewHost(t Transport) *Host { return &Host{t: t} }

// call encodes req, performs op and returns the response record, or the
// call's status as a *StatusError.
func (h *Host) call(ctx context.Context, op abi.Op, req *abi.Request) (flat.Record, error) {
	if err := ctx.Err(); err != nil {
		return flat.Record{}, err
	}
	h.scratch = req.AppendTo(h.scratch[:0])
	resp := flat.View(h.t.Call(op, h.scratch))
	if code := resp.Int(abi.ResponseSlotCode); code < 200 || code > 299 {
		return resp, &StatusError{abi.StatusOf(resp)}
	}
	return resp, nil
}

func objectRequest(p *Projection, ns, name string) abi.Request {
	return abi.Request{Group: p.Group, Version: p.Version, Resource: p.Resource, Kind: p.Kind,
		Namespace: ns, Name: name, Projection: p.id}
}

// Get reads the object ns/name of obj's resource into obj (from the
// engine's cache when the resource is cached). A missing object is an error
// for which IsNotFound is true.
func (h *Host) Get(ctx context.Context, ns, name string, obj Object) error {
	req := objectRequest(obj.WreProjection(), ns, name)
	resp, err := h.call(ctx, abi.OpGet, &req)
	if err != nil {
		return err
	}
	obj.WreDecode(resp.Record(abi.ResponseSlotObject))
	return nil
}

// ListOptions select the objects of a list.
type ListOptions struct {
	// Namespace limits the list to one namespace; "" lists all.
	Namespace string
	// LabelSelector in kubectl's syntax, e.g. "app=web,tier!=db".
	LabelSelector string
}

// List decodes each object of obj's resource that opts select into obj and
// calls each, in order, until each returns an error.
func (h *Host) List(ctx context.Context, obj Object, opts ListOptions, each func() error) error {
	req := objectRequest(obj.WreProjection(), opts.Namespace, "")
	req.LabelSelector = opts.LabelSelector
	resp, err := h.call(ctx, abi.OpList, &req)
	if err != nil {
		return err
	}
	items := resp.List(abi.ResponseSlotItems)
	for j := range items.Len() {
		obj.WreDecode(items.Record(j))
		if err := each(); err != nil {
			return err
		}
	}
	return nil
}

// Apply server-side applies obj's declared fields other than status and
// server-owned metadata: it creates the object if it does not exist. The
// module becomes the owner of those fields.
func (h *Host) Apply(ctx context.Context, obj Object) error { return h.apply(ctx, abi.OpApply, obj) }

// ApplyStatus server-side applies obj's declared status fields to its status
// subresource.
func (h *Host) ApplyStatus(ctx context.Context, obj Object) error {
	return h.apply(ctx, abi.OpStatusApply, obj)
}

func (h *Host) apply(ctx context.Context, op abi.Op, obj Object) error {
	m := obj.WreMeta()
	req := objectRequest(obj.WreProjection(), m.Namespace, m.Name)
	obj.WreEncode(&h.enc)
	req.ContentType, req.Body = abi.ContentTypeFlat, h.enc.Bytes()
	resp, err := h.call(ctx, op, &req)
	if err != nil {
		return err
	}
	obj.WreDecode(resp.Record(abi.ResponseSlotObject))
	return nil
}

// Patch sends a patch document of patchType (abi.PatchJSON or
// abi.PatchMerge) for the object named by obj's Meta, and decodes the result
// into obj: the escape hatch for changes an apply cannot express, such as
// removing a finalizer that another manager's update once added.
func (h *Host) Patch(ctx context.Context, obj Object, patchType string, patch []byte) error {
	m := obj.WreMeta()
	req := objectRequest(obj.WreProjection(), m.Namespace, m.Name)
	req.PatchType, req.Body = patchType, patch
	resp, err := h.call(ctx, abi.OpPatch, &req)
	if err != nil {
		return err
	}
	obj.WreDecode(resp.Record(abi.ResponseSlotObject))
	return nil
}

// Delete deletes the object named by obj's Meta, with background
// propagation and, when obj has a UID, only if the object still has it.
// Deleting an object that is gone is not an error.
func (h *Host) Delete(ctx context.Context, obj Object) error {
	m := obj.WreMeta()
	req := objectRequest(obj.WreProjection(), m.Namespace, m.Name)
	req.Projection = 0
	req.PropagationPolicy = "Background"
	req.PreconditionUID = m.UID
	if _, err := h.call(ctx, abi.OpDelete, &req); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}

// Event records a Kubernetes Event about the object being reconciled, of
// type "Normal" or "Warning". Recording is best effort: a failure is logged.
// Build message with string concatenation or strconv: fmt costs a guest
// far more.
func (h *Host) Event(ctx context.Context, eventType, reason, message string) {
	req := abi.Request{EventType: eventType, EventReason: reason, EventMessage: message}
	if _, err := h.call(ctx, abi.OpEvent, &req); err != nil {
		h.Log(abi.LevelError, "record event "+reason+": "+err.Error())
	}
}

// Config returns the module's configuration (its manifest's config, JSON).
func (h *Host) Config(ctx context.Context) ([]byte, error) {
	resp, err := h.call(ctx, abi.OpConfig, &abi.Request{})
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return append([]byte(nil), resp.Bytes(abi.ResponseSlotObject)...), nil
}

// Log writes msg at level; key/value pairs follow as " key=value", the value
// quoted when it is empty or has spaces, quotes or '='.
func (h *Host) Log(level abi.Level, msg string, kv ...string) {
	if len(kv) > 0 {
		var b strings.Builder
		b.WriteString(msg)
		for i := 0; i+1 < len(kv); i += 2 {
			v := kv[i+1]
			if v == "" || strings.ContainsAny(v, " \t\n\"=") {
				v = strconv.Quote(v)
			}
			b.WriteString(" " + kv[i] + "=" + v)
		}
		msg = b.String()
	}
	h.t.Log(level, []byte(msg))
}

// Info logs msg at info level.
func (h *Host) Info(msg string, kv ...string) { h.Log(abi.LevelInfo, msg, kv...) }

// declare tells the host about p (during _initialize) and numbers it.
func (h *Host) declare(p *Projection, id int64) error {
	req := abi.Request{Group: p.Group, Version: p.Version, Resource: p.Resource, Kind: p.Kind, Fields: p.Fields}
	if _, err := h.call(context.Background(), abi.OpDeclare, &req); err != nil {
		return fmt.Errorf("declare %s: %w", p.Resource, err)
	}
	p.id = id
	return nil
}

// reconcileCtx is the context of every reconcile: it carries the reconcile
// ID without allocating a new context each time.
type reconcileCtx struct {
	context.Context
	id string
}

type reconcileIDKey struct{}

func (c *reconcileCtx) Value(key any) any {
	if key == (reconcileIDKey{}) {
		return &c.id // a pointer: boxing it does not allocate
	}
	return c.Context.Value(key)
}

// ReconcileID returns the ID the host gave the current reconcile.
func ReconcileID(ctx context.Context) string {
	if id, ok := ctx.Value(reconcileIDKey{}).(*string); ok {
		return *id
	}
	return ""
}

// Instance runs one registered module over a transport: the wasm exports
// drive one, and so can tests.
type Instance struct {
	module Module
	host   *Host
	ctx    reconcileCtx
}

// NewInstance declares every projection (in the order the generated code
// registered them) and returns the instance.
func NewInstance(m Module, t Transport) (*Instance, error) {
	if m.run == nil {
		return nil, errors.New("lean: the module has no reconciler: use lean.For")
	}
	h := NewHost(t)
	for i, p := range declared {
		if err := h.declare(p, int64(i+1)); err != nil {
			return nil, err
		}
	}
	if m.primary.WreProjection().id == 0 {
		return nil, fmt.Errorf("lean: the projection of the primary type (%s) is not declared: run wre build", m.primary.WreProjection().Resource)
	}
	return &Instance{module: m, host: h, ctx: reconcileCtx{Context: context.Background()}}, nil
}

// Reconcile runs one reconcile of the v2 request record and returns the
// result record, or nil for success with nothing to requeue.
func (i *Instance) Reconcile(req flat.Record) []byte {
	i.ctx.id = req.String(abi.ReconcileSlotID)
	var res Result
	err := protect(func() (err error) {
		res, err = i.module.run(&i.ctx, i.host, req.Record(abi.ReconcileSlotObject), req.Bool(abi.ReconcileSlotFound),
			req.String(abi.ReconcileSlotNamespace), req.String(abi.ReconcileSlotName))
		return err
	})
	if err == nil && res.RequeueAfter <= 0 {
		return nil
	}
	b := &i.host.result
	b.Reset(abi.ResultSlots)
	if err != nil {
		var p *panicError
		panicked := errors.As(err, &p)
		b.SetString(abi.ResultSlotError, err.Error())
		b.SetBool(abi.ResultSlotFailed, true)
		b.SetBool(abi.ResultSlotTerminal, IsTerminal(err) && !panicked)
		b.SetBool(abi.ResultSlotPanicked, panicked)
	} else {
		b.SetInt(abi.ResultSlotRequeueAfter, int64(res.RequeueAfter))
	}
	return b.Bytes()
}

// declared are the projections of the generated types, in registration order.
var declared []*Projection

// Declare registers p and returns it; generated code calls it in the
// initializer of a package variable, which runs before any init function.
func Declare(p *Projection) *Projection {
	declared = append(declared, p)
	return p
}

var registered *Module

// onRegister starts the instance in the wasm build, while the host runs
// _initialize: the only time it accepts declarations.
var onRegister func(m Module)

// Register makes m the module's reconciler. Call it once, from an init
// function. In a wasm guest it declares the projections to the host; a
// declaration the host refuses (a field the resource does not have) panics,
// so the module fails to load with the host's reason.
func Register(m Module) {
	if registered != nil {
		panic("lean: Register called twice")
	}
	registered = &m
	if onRegister != nil {
		onRegister(m)
	}
}
