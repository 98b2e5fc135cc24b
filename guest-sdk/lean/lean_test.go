package lean

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

// widget is a hand-written Object (what leangen generates).
type widget struct {
	Meta
	Desired string
	Labels  Map
}

var widgetProjection = &Projection{Group: "demo.wre.dev", Version: "v1", Resource: "widgets", Kind: "Widget",
	Fields: append(append([]string{}, MetaFields...), "spec.desired:string", "metadata.labels:map")}

func (*widget) WreProjection() *Projection { return widgetProjection }
func (o *widget) WreDecode(r flat.Record) {
	o.DecodeMeta(r)
	o.Desired, o.Labels = r.String(6), DecodeMap(r, 7)
}
func (o *widget) WreEncode(b *flat.Builder) {
	b.Reset(8)
	o.EncodeMeta(b)
	b.SetString(6, o.Desired)
	o.Labels.Encode(b, 7)
}

// fakeHost answers calls like the host: declare, get (of "present" only),
// list, status_apply; it records each call.
type fakeHost struct {
	calls []abi.Request
	ops   []abi.Op
	logs  []string
	out   flat.Builder
}

func (f *fakeHost) Call(op abi.Op, raw []byte) []byte {
	var req abi.Request
	if err := req.Unmarshal(raw); err != nil {
		panic(err)
	}
	f.calls, f.ops = append(f.calls, req), append(f.ops, op)
	obj := func(name string) []byte {
		w := widget{Meta: Meta{Namespace: "ns", Name: name}, Desired: "blue", Labels: MapOf(map[string]string{"a": "1"})}
		var b flat.Builder
		w.WreEncode(&b)
		return b.Bytes()
	}
	f.out.Reset(abi.ResponseSlots)
	switch {
	case op == abi.OpGet && req.Name != "present":
		f.out.SetInt(abi.ResponseSlotCode, 404)
		f.out.SetString(abi.ResponseSlotReason, "NotFound")
		f.out.SetString(abi.ResponseSlotMessage, `widgets "`+req.Name+`" not found`)
	case op == abi.OpGet || op == abi.OpStatusApply:
		f.out.SetInt(abi.ResponseSlotCode, 200)
		f.out.SetBytes(abi.ResponseSlotObject, obj(req.Name))
	case op == abi.OpList:
		f.out.SetInt(abi.ResponseSlotCode, 200)
		f.out.SetList(abi.ResponseSlotItems, [][]byte{obj("a"), obj("b")})
	default:
		f.out.SetInt(abi.ResponseSlotCode, 200)
	}
	// Like the host, never overwrite what an earlier call of the reconcile got.
	return append([]byte(nil), f.out.Bytes()...)
}

func (f *fakeHost) Log(_ abi.Level, msg []byte) { f.logs = append(f.logs, string(msg)) }

func request(found bool, name string) flat.Record {
	var obj, b flat.Builder
	w := widget{Meta: Meta{Namespace: "ns", Name: name, Generation: 2}, Desired: "blue"}
	w.WreEncode(&obj)
	b.Reset(abi.ReconcileSlots)
	b.SetString(abi.ReconcileSlotNamespace, "ns")
	b.SetString(abi.ReconcileSlotName, name)
	b.SetString(abi.ReconcileSlotID, "id-1")
	if found {
		b.SetBytes(abi.ReconcileSlotObject, obj.Bytes())
		b.SetBool(abi.ReconcileSlotFound, true)
	}
	return flat.View(append([]byte(nil), b.Bytes()...))
}

func newInstance(t *testing.T, fn func(ctx context.Context, h *Host, req Request[widget]) (Result, error)) (*Instance, *fakeHost) {
	t.Helper()
	declared = []*Projection{widgetProjection}
	f := &fakeHost{}
	i, err := NewInstance(For(fn), f)
	if err != nil {
		t.Fatal(err)
	}
	if f.ops[0] != abi.OpDeclare || strings.Join(f.calls[0].Fields, ",") != strings.Join(widgetProjection.Fields, ",") || widgetProjection.id != 1 {
		t.Fatalf("declare: %v %+v", f.ops, f.calls[0])
	}
	return i, f
}

func result(t *testing.T, raw []byte) flat.Record {
	t.Helper()
	r, err := flat.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(abi.ResultKinds); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReconcileDecodesThePrimaryObject(t *testing.T) {
	var got []string
	i, _ := newInstance(t, func(ctx context.Context, h *Host, req Request[widget]) (Result, error) {
		if req.Object == nil {
			got = append(got, "nil "+req.String())
			return Result{}, nil
		}
		got = append(got, req.Object.Desired+" "+req.String()+" "+ReconcileID(ctx))
		return Result{}, nil
	})
	if res := i.Reconcile(request(true, "w")); res != nil {
		t.Fatalf("success without requeue must return no record, got %v", res)
	}
	i.Reconcile(request(false, "gone"))
	if strings.Join(got, "|") != "blue ns/w id-1|nil ns/gone" {
		t.Fatalf("reconciles saw %q", got)
	}
}

func TestInSyncReconcileDoesNotAllocate(t *testing.T) {
	i, _ := newInstance(t, func(ctx context.Context, h *Host, req Request[widget]) (Result, error) {
		if req.Object.Desired != "blue" || ReconcileID(ctx) != "id-1" {
			t.Fatal("wrong request")
		}
		return Result{}, nil
	})
	req := request(true, "w")
	if allocs := testing.AllocsPerRun(100, func() { i.Reconcile(req) }); allocs > 0 {
		t.Errorf("an in-sync reconcile allocated %v times", allocs)
	}
}

func TestReconcileResults(t *testing.T) {
	for _, c := range []struct {
		name  string
		fn    func() (Result, error)
		check func(r flat.Record) bool
	}{
		{"requeue", func() (Result, error) { return Result{RequeueAfter: time.Minute}, nil },
			func(r flat.Record) bool {
				return r.Int(abi.ResultSlotRequeueAfter) == int64(time.Minute) && !r.Bool(abi.ResultSlotFailed)
			}},
		{"error", func() (Result, error) { return Result{RequeueAfter: time.Minute}, errors.New("boom") },
			func(r flat.Record) bool {
				return r.Bool(abi.ResultSlotFailed) && r.String(abi.ResultSlotError) == "boom" && r.Int(abi.ResultSlotRequeueAfter) == 0 && !r.Bool(abi.ResultSlotTerminal)
			}},
		{"terminal", func() (Result, error) { return Result{}, TerminalError(errors.New("bad spec")) },
			func(r flat.Record) bool {
				return r.Bool(abi.ResultSlotTerminal) && r.String(abi.ResultSlotError) == "terminal error: bad spec"
			}},
		{"panic", func() (Result, error) { panic("oops") },
			func(r flat.Record) bool {
				return r.Bool(abi.ResultSlotPanicked) && strings.HasPrefix(r.String(abi.ResultSlotError), "panic: oops\n") && !r.Bool(abi.ResultSlotTerminal)
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			i, _ := newInstance(t, func(context.Context, *Host, Request[widget]) (Result, error) { return c.fn() })
			if r := result(t, i.Reconcile(request(true, "w"))); !c.check(r) {
				t.Fatalf("result: requeue %d error %q failed %v terminal %v panicked %v", r.Int(0), r.String(1), r.Bool(2), r.Bool(3), r.Bool(4))
			}
		})
	}
}

func TestHostCalls(t *testing.T) {
	var w widget
	i, f := newInstance(t, func(ctx context.Context, h *Host, req Request[widget]) (Result, error) {
		if err := h.Get(ctx, "ns", "absent", &w); !IsNotFound(err) || err.Error() != `widgets "absent" not found` {
			t.Errorf("get of a missing object: %v", err)
		}
		if err := h.Get(ctx, "ns", "present", &w); err != nil || w.Name != "present" {
			t.Errorf("get: %v %+v", err, w.Meta)
		}
		var names []string
		if err := h.List(ctx, &w, ListOptions{Namespace: "ns", LabelSelector: "a=1"}, func() error {
			names = append(names, w.Name)
			return nil
		}); err != nil || strings.Join(names, ",") != "a,b" {
			t.Errorf("list: %v %v", err, names)
		}
		stop := errors.New("stop")
		if err := h.List(ctx, &w, ListOptions{}, func() error { return stop }); err != stop {
			t.Errorf("list stops at the callback's error, got %v", err)
		}
		req.Object.Desired = "green"
		if err := h.ApplyStatus(ctx, req.Object); err != nil {
			t.Errorf("apply: %v", err)
		}
		h.Event(ctx, "Normal", "Synced", "done")
		h.Info("synced", "from", "", "to", "a b")
		return Result{}, nil
	})
	i.Reconcile(request(true, "w"))
	if got := f.ops[1:]; len(got) != 6 || got[0] != abi.OpGet || got[2] != abi.OpList || got[4] != abi.OpStatusApply || got[5] != abi.OpEvent {
		t.Fatalf("ops %v", got)
	}
	apply := f.calls[5]
	if apply.Projection != 1 || apply.Name != "w" || apply.Namespace != "ns" || apply.ContentType != abi.ContentTypeFlat {
		t.Fatalf("apply request %+v", apply)
	}
	sent, err := flat.Parse(apply.Body)
	if err != nil || sent.String(6) != "green" {
		t.Fatalf("apply body: %v %q", err, sent.String(6))
	}
	if f.calls[3].LabelSelector != "a=1" {
		t.Errorf("list selector %q", f.calls[3].LabelSelector)
	}
	if len(f.logs) != 1 || f.logs[0] != `synced from="" to="a b"` {
		t.Errorf("logs %q", f.logs)
	}
}

func TestMapAndList(t *testing.T) {
	var b flat.Builder
	b.Reset(2)
	b.SetMap(0, map[string]string{"a": "1", "b": "2"})
	b.SetStrings(1, []string{"x", "y"})
	r := flat.View(b.Bytes())
	view, set := DecodeMap(r, 0), MapOf(map[string]string{"b": "2", "a": "1"})
	if !view.Equal(set) || !set.Equal(view) || view.Len() != 2 {
		t.Error("a decoded map and an equal Go map differ")
	}
	if set.Equal(MapOf(map[string]string{"a": "1", "b": "3"})) {
		t.Error("different maps are equal")
	}
	l := DecodeList(r, 1)
	if !l.Contains("y") || l.Contains("z") || l.At(0) != "x" || ListOf([]string{"q"}).At(0) != "q" {
		t.Error("list")
	}
	var out flat.Builder
	out.Reset(2)
	view.Encode(&out, 0)
	l.Encode(&out, 1)
	back := flat.View(out.Bytes())
	if !DecodeMap(back, 0).Equal(view) || DecodeList(back, 1).At(1) != "y" {
		t.Error("re-encoding a view changed it")
	}
}

func TestNewInstanceNeedsADeclaredPrimary(t *testing.T) {
	declared = nil
	widgetProjection.id = 0
	if _, err := NewInstance(For(func(context.Context, *Host, Request[widget]) (Result, error) { return Result{}, nil }), &fakeHost{}); err == nil ||
		!strings.Contains(err.Error(), "not declared") {
		t.Fatalf("error %v", err)
	}
	if _, err := NewInstance(Module{}, &fakeHost{}); err == nil {
		t.Fatal("a module without a reconciler was accepted")
	}
}
