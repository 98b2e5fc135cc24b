package host

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host/reconcile"
)

// abiMarkerPrefix starts every ABI version marker export.
const abiMarkerPrefix = "wre_abi_v"

// abiVersion is one ABI version: what it requires of a module and how the host
// drives such a module. A Runtime supports every version in its table side by
// side (builtinABIVersions unless a test says otherwise); each compiled module
// keeps the version its marker names, and everything version-specific goes
// through it: the exports and imports checked at compile time, the exports an
// instance binds, how a reconcile is invoked, and what each wre host function
// does. docs/abi.md §9 says how to add one.
type abiVersion struct {
	marker  string
	exports []export
	// imports are the functions of the wre import module a module of this
	// version may import. Versions may share a name only with the same
	// signature; the host dispatches each call to the implementation of the
	// calling module's version.
	imports map[string]hostImport
	// alloc and free name the allocator exports the host writes into guest
	// memory with (instance.write); reconcileExport the export reconcile calls.
	alloc, free, reconcileExport string
	// reconcile runs one reconcile of req in inst, a guest call under ctx. An
	// error means the instance must be discarded.
	reconcile func(ctx context.Context, m *Module, inst *instance, req reconcile.Request, id string) (abi.ReconcileResponse, error)
	// projected marks the versions whose host calls carry objects in declared
	// projections (v2) and serve declare, apply and status_apply.
	projected bool
}

type export struct {
	name     string
	sig      signature
	optional bool
}

// hostImport is a function of the wre import module as one version defines it.
type hostImport struct {
	sig    signature
	params []string // parameter names, for wazero's diagnostics
	fn     func(rt *Runtime, ctx context.Context, mod api.Module, stack []uint64)
}

type signature struct{ params, results []api.ValueType }

func (s signature) matches(d api.FunctionDefinition) bool {
	return slices.Equal(s.params, d.ParamTypes()) && slices.Equal(s.results, d.ResultTypes())
}

func (s signature) equal(o signature) bool {
	return slices.Equal(s.params, o.params) && slices.Equal(s.results, o.results)
}

func (s signature) String() string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(out, ",") + ")"
	}
	return fmt.Sprintf("%s->%s", names(s.params), names(s.results))
}

func sigOf(d api.FunctionDefinition) signature {
	return signature{params: d.ParamTypes(), results: d.ResultTypes()}
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

var abiV1 = &abiVersion{
	marker: abi.MarkerV1,
	exports: []export{
		{name: abi.MarkerV1, sig: signature{}},
		{name: abi.ExportAlloc, sig: signature{[]api.ValueType{i32}, []api.ValueType{i32}}},
		{name: abi.ExportFree, sig: signature{[]api.ValueType{i32}, nil}},
		{name: abi.ExportReconcile, sig: signature{[]api.ValueType{i32, i32}, []api.ValueType{i64}}},
		{name: "_initialize", sig: signature{}, optional: true},
	},
	imports: map[string]hostImport{
		abi.ImportCall: {sig: signature{[]api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
			params: []string{"op", "req_ptr", "req_len"}, fn: (*Runtime).hostCall},
		abi.ImportLog: {sig: signature{[]api.ValueType{i32, i32, i32}, nil},
			params: []string{"level", "ptr", "len"}, fn: (*Runtime).hostLog},
	},
	alloc: abi.ExportAlloc, free: abi.ExportFree, reconcileExport: abi.ExportReconcile,
	reconcile: reconcileV1,
}

// builtinABIVersions are the versions every Runtime supports.
var builtinABIVersions = []*abiVersion{abiV1, abiV2}

// abiTable is the set of versions one Runtime supports, by marker.
type abiTable map[string]*abiVersion

func newABITable(versions []*abiVersion) (abiTable, error) {
	t := abiTable{}
	for _, v := range versions {
		if !strings.HasPrefix(v.marker, abiMarkerPrefix) {
			return nil, fmt.Errorf("ABI version marker %q does not start with %s", v.marker, abiMarkerPrefix)
		}
		if t[v.marker] != nil {
			return nil, fmt.Errorf("ABI version %s listed twice", v.marker)
		}
		t[v.marker] = v
	}
	if _, err := t.hostFunctions(); err != nil {
		return nil, err
	}
	return t, nil
}

// markers returns the supported markers, sorted.
func (t abiTable) markers() []string {
	out := make([]string, 0, len(t))
	for m := range t {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// hostFunctions returns, for each wre import name of any version, its
// signature and the implementations of the versions that have it (the first
// in marker order serves callers outside a module's guest call).
func (t abiTable) hostFunctions() (map[string][]hostImport, error) {
	out := map[string][]hostImport{}
	for _, marker := range t.markers() {
		for name, imp := range t[marker].imports {
			if prev := out[name]; len(prev) > 0 && !prev[0].sig.equal(imp.sig) {
				return nil, fmt.Errorf("ABI version %s declares wre.%s as %s, another version as %s; a changed signature needs a new name",
					marker, name, imp.sig, prev[0].sig)
			}
			out[name] = append(out[name], imp)
		}
	}
	return out, nil
}

// dispatch returns the wre host function name: it runs the implementation of
// the calling module's version (validation made sure that version imports
// name), or fallback outside a guest call of a module.
func (rt *Runtime) dispatch(name string, fallback hostImport) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if st := stateOf(ctx); st != nil {
			if imp, ok := st.m.compiled.entry.version.imports[name]; ok {
				imp.fn(rt, ctx, mod, stack)
				return
			}
		}
		fallback.fn(rt, ctx, mod, stack)
	}
}

// reconcileV1 passes the request to wre_reconcile and decodes its response
// (docs/abi.md §2, §3.2, §3.3).
func reconcileV1(ctx context.Context, m *Module, inst *instance, req reconcile.Request, id string) (res abi.ReconcileResponse, err error) {
	// write panics with *protocolError on a broken allocator.
	defer recoverGuestCallError(&err)
	msg := (&abi.ReconcileRequest{Namespace: req.Namespace, Name: req.Name, ReconcileID: id}).Marshal()
	ptr, n := abi.Unpack(inst.write(ctx, msg))
	stack := []uint64{api.EncodeU32(ptr), api.EncodeU32(n)}
	if err := inst.reconcile.CallWithStack(ctx, stack); err != nil {
		return res, err
	}
	if stack[0] == 0 {
		return res, nil
	}
	b, err := m.reconcileResponse(inst, stack[0])
	if err != nil {
		return res, err
	}
	if err := res.Unmarshal(b); err != nil {
		return res, &protocolError{fmt.Sprintf("reconcile response: %v", err)}
	}
	ptr, _ = abi.Unpack(stack[0])
	if err := inst.free.CallWithStack(ctx, []uint64{api.EncodeU32(ptr)}); err != nil {
		return res, err
	}
	return res, nil
}

// recoverGuestCallError turns a panic with an error, which the host's guest
// memory writers raise for a broken allocator or buffer (a *protocolError,
// or the error of the guest call), into *err; other panics go on.
func recoverGuestCallError(err *error) {
	if r := recover(); r != nil {
		if e, ok := r.(error); ok {
			*err = e
			return
		}
		panic(r)
	}
}

// reconcileResponse returns the guest memory of the reconcile response that
// wre_reconcile returned packed in v: a protocol error when it is larger than
// the maximum message size or outside memory.
func (m *Module) reconcileResponse(inst *instance, v uint64) ([]byte, error) {
	ptr, n := abi.Unpack(v)
	if int(n) > m.rt.opts.MaxMessageSize {
		return nil, &protocolError{fmt.Sprintf("reconcile response of %d bytes exceeds the maximum message size %d", n, m.rt.opts.MaxMessageSize)}
	}
	b, ok := read(inst.mod, ptr, n)
	if !ok {
		return nil, &protocolError{fmt.Sprintf("reconcile response (%#x, %d) is outside memory of %d bytes", ptr, n, inst.mod.Memory().Size())}
	}
	return b, nil
}
