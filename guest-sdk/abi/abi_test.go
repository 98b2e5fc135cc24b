package abi

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func TestPackUnpack(t *testing.T) {
	for _, c := range []struct{ ptr, n uint32 }{{0, 0}, {1, 2}, {0xffffffff, 0xffffffff}, {0x10000, 17}} {
		p, n := Unpack(Pack(c.ptr, c.n))
		if p != c.ptr || n != c.n {
			t.Errorf("Unpack(Pack(%d, %d)) = %d, %d", c.ptr, c.n, p, n)
		}
	}
}

func TestOpString(t *testing.T) {
	if got := OpStatusPatch.String(); got != "status_patch" {
		t.Errorf("OpStatusPatch = %q", got)
	}
	if got := OpStatusApply.String(); got != "status_apply" {
		t.Errorf("OpStatusApply = %q", got)
	}
	for _, op := range []Op{0, 14, 1 << 31} {
		if got := op.String(); got != "unknown" {
			t.Errorf("Op(%d) = %q, want unknown", op, got)
		}
	}
}

func TestOpsListsEveryNamedOp(t *testing.T) {
	ops := Ops()
	if len(ops) != 13 || ops[0] != OpGet || ops[len(ops)-1] != OpStatusApply {
		t.Fatalf("Ops() = %v", ops)
	}
	for _, op := range ops {
		if op.String() == "unknown" {
			t.Errorf("Ops() lists %d, which has no name", op)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	req := Request{
		Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment",
		Namespace: "ns", Name: "n", LabelSelector: "a=b", FieldSelector: "metadata.name=n",
		Limit: 50, Continue: "tok", ContentType: ContentTypeJSON, Body: []byte(`{"a":1}`),
		PatchType: PatchApply, FieldManager: "m", Force: true, DryRun: true,
		PreconditionUID: "uid", PreconditionResourceVersion: "7", PropagationPolicy: "Foreground",
		Live: true, Accept: ContentTypeProtobuf, EventType: "Warning", EventReason: "R", EventMessage: "msg",
	}
	var gotReq Request
	if err := gotReq.Unmarshal(req.Marshal()); err != nil || !reflect.DeepEqual(req, gotReq) {
		t.Fatalf("request round trip: %v\n got %+v\nwant %+v", err, gotReq, req)
	}
	resp := Response{
		Status:      Status{Code: 404, Reason: "NotFound", Message: "m", Group: "apps", Kind: "deployments", Name: "n"},
		ContentType: ContentTypeProtobuf, Body: []byte{}, Items: [][]byte{{1}, {}, {2, 3}},
		Continue: "c", ResourceVersion: "9",
	}
	enc := resp.Marshal()
	if len(enc) != resp.Size() {
		t.Errorf("Size() = %d, encoded %d bytes", resp.Size(), len(enc))
	}
	var gotResp Response
	if err := gotResp.Unmarshal(enc); err != nil || !reflect.DeepEqual(resp, gotResp) {
		t.Fatalf("response round trip: %v\n got %+v\nwant %+v", err, gotResp, resp)
	}
	rr := ReconcileRequest{Namespace: "ns", Name: "n", ReconcileID: "id"}
	var gotRR ReconcileRequest
	if err := gotRR.Unmarshal(rr.Marshal()); err != nil || gotRR != rr {
		t.Fatalf("reconcile request round trip: %v %+v", err, gotRR)
	}
	for _, rs := range []ReconcileResponse{
		{}, {RequeueAfterNanos: 5e9}, {Failed: true}, {Failed: true, Error: "boom"}, {Failed: true, Error: "x", Terminal: true},
		{Failed: true, Error: "panic: x", Panicked: true},
	} {
		var got ReconcileResponse
		if err := got.Unmarshal(rs.Marshal()); err != nil || got != rs {
			t.Errorf("reconcile response round trip of %+v: %v %+v", rs, err, got)
		}
	}
}

func TestTerminalWithoutErrorFails(t *testing.T) {
	b := appendBool(nil, TagTerminal, true)
	var got ReconcileResponse
	if err := got.Unmarshal(b); err != nil || !got.Failed || !got.Terminal {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestPanickedWithoutErrorFails(t *testing.T) {
	b := appendBool(nil, TagPanicked, true)
	var got ReconcileResponse
	if err := got.Unmarshal(b); err != nil || !got.Failed || !got.Panicked {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestUnknownTagsIgnored(t *testing.T) {
	b := appendString(nil, 999, "future")
	b = appendString(b, TagName, "n")
	b = appendBytes(b, 0xffff, []byte{1, 2, 3})
	var req Request
	if err := req.Unmarshal(b); err != nil || req.Name != "n" {
		t.Fatalf("got %+v, %v", req, err)
	}
}

func TestDecodedBytesDoNotAlias(t *testing.T) {
	resp := Response{Status: Status{Code: 200}, Body: []byte("body"), Items: [][]byte{[]byte("item")}}
	enc := resp.Marshal()
	var got Response
	if err := got.Unmarshal(enc); err != nil {
		t.Fatal(err)
	}
	clear(enc)
	if string(got.Body) != "body" || string(got.Items[0]) != "item" {
		t.Fatalf("decoded values changed with the input: %q %q", got.Body, got.Items[0])
	}
}

func TestMalformed(t *testing.T) {
	lenField := func(tag uint16, n uint32) []byte {
		b := binary.LittleEndian.AppendUint16(nil, tag)
		return binary.LittleEndian.AppendUint32(b, n)
	}
	cases := map[string]struct {
		msg []byte
		dec func([]byte) error
	}{
		"truncated header":        {[]byte{1, 0, 0}, new(Request).Unmarshal},
		"length past end":         {lenField(TagName, 10), new(Request).Unmarshal},
		"huge length":             {lenField(TagName, 0xffffffff), new(ReconcileRequest).Unmarshal},
		"short integer":           {append(lenField(TagLimit, 2), 1, 2), new(Request).Unmarshal},
		"bool of two bytes":       {append(lenField(TagLive, 2), 1, 0), new(Request).Unmarshal},
		"bool value 2":            {append(lenField(TagForce, 1), 2), new(Request).Unmarshal},
		"negative limit":          {appendUint64(nil, TagLimit, ^uint64(0)), new(Request).Unmarshal},
		"response without code":   {appendString(nil, TagReason, "NotFound"), new(Response).Unmarshal},
		"code out of range":       {appendUint64(nil, TagCode, 1<<40), new(Response).Unmarshal},
		"requeue of 4 bytes":      {append(lenField(TagRequeueAfter, 4), 0, 0, 0, 0), new(ReconcileResponse).Unmarshal},
		"terminal not a bool":     {append(lenField(TagTerminal, 1), 7), new(ReconcileResponse).Unmarshal},
		"panicked not a bool":     {append(lenField(TagPanicked, 2), 1, 0), new(ReconcileResponse).Unmarshal},
		"response header trailer": {append(appendUint64(nil, TagCode, 200), 9), new(Response).Unmarshal},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := c.dec(c.msg); !errors.Is(err, ErrMalformed) {
				t.Fatalf("error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestStatusOK(t *testing.T) {
	for code, want := range map[int32]bool{200: true, 201: true, 299: true, 0: false, 199: false, 300: false, 404: false} {
		if got := (Status{Code: code}).OK(); got != want {
			t.Errorf("Status{%d}.OK() = %v", code, got)
		}
	}
}
