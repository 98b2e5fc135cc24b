package host

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/tetratelabs/wazero/api"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
	"github.com/wre-dev/wre/host/reconcile"
)

// abiV2 is the projected, single-entry data path (docs/abi.md §10): the
// reconcile request carries the primary object projected to the fields the
// module declared, host messages are flat records written into one buffer
// the guest lends per instance, and nothing is allocated in the guest by the
// host on the hot path.
var abiV2 = &abiVersion{
	marker: abi.MarkerV2,
	exports: []export{
		{name: abi.MarkerV2, sig: signature{}},
		{name: abi.ExportBuffer, sig: signature{[]api.ValueType{i32}, []api.ValueType{i32}}},
		{name: abi.ExportReconcile, sig: signature{[]api.ValueType{i32, i32}, []api.ValueType{i64}}},
		{name: "_initialize", sig: signature{}, optional: true},
	},
	imports: map[string]hostImport{
		abi.ImportCall: {sig: signature{[]api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
			params: []string{"op", "req_ptr", "req_len"}, fn: (*Runtime).hostCallV2},
		abi.ImportLog: {sig: signature{[]api.ValueType{i32, i32, i32}, nil},
			params: []string{"level", "ptr", "len"}, fn: (*Runtime).hostLog},
	},
	alloc: abi.ExportBuffer, reconcileExport: abi.ExportReconcile,
	reconcile: reconcileV2,
	projected: true,
}

// Sizes of the v2 buffer: the first one a module gets, and the alignment of
// the messages the host writes into it.
const (
	initialBufferSize = 64 << 10
	bufferAlign       = 8
)

// buffer is the guest memory an instance lent the host (wre_buffer). During
// one reconcile the host appends its messages to it, so everything it wrote
// stays valid until wre_reconcile returns; a message that does not fit asks
// the guest for a new, larger buffer, and the next reconcile starts at its
// beginning again.
type buffer struct {
	ptr, size, used uint32
}

// put copies data into the instance's buffer and returns its packed
// (ptr, len). A broken wre_buffer panics with a *protocolError, which wazero
// turns into an error of the running guest call.
func (inst *instance) put(ctx context.Context, data []byte) uint64 {
	n := uint32(len(data))
	if uint64(inst.buf.used)+uint64(n) > uint64(inst.buf.size) {
		size := max(initialBufferSize, 2*inst.buf.size)
		for size < n {
			size *= 2
		}
		stack := []uint64{api.EncodeU32(size)}
		if err := inst.alloc.CallWithStack(ctx, stack); err != nil {
			panic(err)
		}
		ptr := api.DecodeU32(stack[0])
		if _, ok := inst.mod.Memory().Read(ptr, size); ptr == 0 || !ok {
			panic(&protocolError{fmt.Sprintf("wre_buffer(%d) returned %#x, outside memory of %d bytes", size, ptr, inst.mod.Memory().Size())})
		}
		inst.buf = buffer{ptr: ptr, size: size}
	}
	ptr := inst.buf.ptr + inst.buf.used
	inst.mod.Memory().Write(ptr, data)
	inst.buf.used += (n + bufferAlign - 1) &^ (bufferAlign - 1)
	return abi.Pack(ptr, n)
}

// reconcileV2 writes the request, with the primary object projected, at the
// start of the instance's buffer, calls wre_reconcile once and reads the
// result record from guest memory.
func reconcileV2(ctx context.Context, m *Module, inst *instance, req reconcile.Request, id string) (res abi.ReconcileResponse, err error) {
	// put panics with *protocolError on a broken wre_buffer.
	defer recoverGuestCallError(&err)
	b := &inst.out
	var object []byte
	found := false
	if p := m.primaryProjection(); p != nil {
		obj, err := m.get(ctx, m.opts.Primary, req.Namespace, req.Name, false)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return abi.ReconcileResponse{Failed: true, Error: fmt.Sprintf("read %s %s: %v", m.opts.PrimaryKind, req, err)}, nil
		default:
			if err := p.encode(&inst.obj, obj); err != nil {
				return abi.ReconcileResponse{Failed: true, Terminal: true, Error: err.Error()}, nil
			}
			object, found = inst.obj.Bytes(), true
		}
		m.recordRead(stateOf(ctx).reads, m.opts.Primary, p, req.Namespace, req.Name, false, obj, err)
	}
	b.Reset(abi.ReconcileSlots)
	b.SetString(abi.ReconcileSlotNamespace, req.Namespace)
	b.SetString(abi.ReconcileSlotName, req.Name)
	b.SetString(abi.ReconcileSlotID, id)
	b.SetBytes(abi.ReconcileSlotObject, object)
	b.SetBool(abi.ReconcileSlotFound, found)
	inst.buf.used = 0
	ptr, n := abi.Unpack(inst.put(ctx, b.Bytes()))
	stack := inst.stack[:]
	stack[0], stack[1] = api.EncodeU32(ptr), api.EncodeU32(n)
	if err := inst.reconcile.CallWithStack(ctx, stack); err != nil {
		return res, err
	}
	if stack[0] == 0 {
		return res, nil
	}
	raw, err := m.reconcileResponse(inst, stack[0])
	if err != nil {
		return res, err
	}
	r, err := flat.Parse(raw)
	if err == nil {
		err = r.Check(abi.ResultKinds[:min(r.Len(), len(abi.ResultKinds))])
	}
	if err != nil {
		return res, &protocolError{fmt.Sprintf("reconcile response: %v", err)}
	}
	res = abi.ReconcileResponse{
		RequeueAfterNanos: r.Int(abi.ResultSlotRequeueAfter),
		Panicked:          r.Bool(abi.ResultSlotPanicked),
		Terminal:          r.Bool(abi.ResultSlotTerminal),
		Failed:            r.Bool(abi.ResultSlotFailed) || r.Bool(abi.ResultSlotTerminal) || r.Bool(abi.ResultSlotPanicked),
	}
	if res.Failed {
		res.Error = strings.Clone(r.String(abi.ResultSlotError)) // out of guest memory
	}
	return res, nil
}

// hostCallV2 implements wre.call for ABI v2: the response is a flat record
// (abi.Response* slots) appended to the instance's buffer.
func (rt *Runtime) hostCallV2(ctx context.Context, mod api.Module, stack []uint64) {
	st, op, resp, start := rt.serveCall(ctx, mod, stack)
	b := &st.inst.out
	encodeResponse(b, resp)
	if size := b.Size(); size > rt.opts.MaxMessageSize {
		encodeResponse(b, abi.Response{Status: abi.Status{
			Code: http.StatusRequestEntityTooLarge, Reason: string(metav1.StatusReasonRequestEntityTooLarge),
			Message: fmt.Sprintf("response of %d bytes exceeds the maximum message size %d; use limit and continue", size, rt.opts.MaxMessageSize),
		}})
		resp.Status.Code = http.StatusRequestEntityTooLarge
	}
	rt.observeCall(st, op, resp.Status, start)
	abortIfDone(ctx)
	stack[0] = st.inst.put(ctx, b.Bytes())
}

// encodeResponse writes resp as a v2 call response record.
func encodeResponse(b *flat.Builder, resp abi.Response) {
	b.Reset(abi.ResponseSlots)
	b.SetInt(abi.ResponseSlotCode, int64(resp.Code))
	b.SetString(abi.ResponseSlotReason, resp.Reason)
	b.SetString(abi.ResponseSlotMessage, resp.Message)
	b.SetString(abi.ResponseSlotGroup, resp.Group)
	b.SetString(abi.ResponseSlotKind, resp.Kind)
	b.SetString(abi.ResponseSlotName, resp.Name)
	b.SetBytes(abi.ResponseSlotObject, resp.Body)
	b.SetList(abi.ResponseSlotItems, resp.Items)
	b.SetString(abi.ResponseSlotContinue, resp.Continue)
	b.SetString(abi.ResponseSlotResourceVersion, resp.ResourceVersion)
}

// declare registers the projection of a declare call made by inst (during
// _initialize). Every instance of a module declares the same projections in
// the same order; the first instance's are kept, and one that differs is
// refused.
func (m *Module) declare(inst *instance, req *abi.Request) abi.Response {
	p, err := parseProjection(req)
	if err != nil {
		return abi.Response{Status: badRequest(err.Error())}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := inst.declared
	switch {
	case i < len(m.projections) && m.projections[i].decl != p.decl:
		return abi.Response{Status: badRequest(fmt.Sprintf("projection %d (%s) differs from the one other instances declared (%s)", i+1, p.decl, m.projections[i].decl))}
	case i == len(m.projections):
		m.projections = append(m.projections, p)
		if m.primary == nil && p.gvr == m.opts.Primary {
			m.primary = p
		}
	}
	inst.declared++
	return abi.Response{Status: abi.Status{Code: http.StatusOK}}
}

// projection returns the declared projection of id (1-based).
func (m *Module) projection(id int64) (*projection, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id < 1 || id > int64(len(m.projections)) {
		return nil, false
	}
	return m.projections[id-1], true
}

// primaryProjection returns the first declared projection of the primary
// resource, which the reconcile request carries; nil if there is none.
func (m *Module) primaryProjection() *projection {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.primary
}
