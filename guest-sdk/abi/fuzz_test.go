package abi

import (
	"reflect"
	"testing"
)

// Each fuzz target checks that decoding arbitrary bytes never panics and that
// whatever decodes re-encodes to a message that decodes to the same value.

func FuzzRequest(f *testing.F) {
	f.Add((&Request{Group: "apps", Name: "x", Limit: 3, Live: true, Body: []byte("{}")}).Marshal())
	f.Add([]byte{1, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m, again Request
		if m.Unmarshal(b) != nil {
			return
		}
		if err := again.Unmarshal(m.Marshal()); err != nil || !reflect.DeepEqual(normBody(m), normBody(again)) {
			t.Fatalf("re-decode: %v\n%+v\n%+v", err, m, again)
		}
	})
}

// normBody maps an empty body to nil: Marshal omits a nil body but keeps an
// empty one, and both mean "no body".
func normBody(m Request) Request {
	if len(m.Body) == 0 {
		m.Body = nil
	}
	return m
}

func FuzzResponse(f *testing.F) {
	f.Add((&Response{Status: Status{Code: 200}, Items: [][]byte{{1}}, Continue: "c"}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		var m, again Response
		if m.Unmarshal(b) != nil {
			return
		}
		if len(m.Body) == 0 {
			m.Body = nil
		}
		enc := m.Marshal()
		if len(enc) != m.Size() {
			t.Fatalf("Size %d, encoded %d", m.Size(), len(enc))
		}
		if err := again.Unmarshal(enc); err != nil {
			t.Fatal(err)
		}
		if len(again.Body) == 0 {
			again.Body = nil
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("re-decode:\n%+v\n%+v", m, again)
		}
	})
}

func FuzzReconcileResponse(f *testing.F) {
	f.Add((&ReconcileResponse{RequeueAfterNanos: 1, Failed: true, Error: "e", Terminal: true}).Marshal())
	f.Add((&ReconcileResponse{Failed: true, Error: "panic: e", Panicked: true}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		var m, again ReconcileResponse
		if m.Unmarshal(b) != nil {
			return
		}
		if err := again.Unmarshal(m.Marshal()); err != nil || m != again {
			t.Fatalf("re-decode: %v\n%+v\n%+v", err, m, again)
		}
	})
}

func FuzzReconcileRequest(f *testing.F) {
	f.Add((&ReconcileRequest{Namespace: "a", Name: "b", ReconcileID: "c"}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		var m, again ReconcileRequest
		if m.Unmarshal(b) != nil {
			return
		}
		if err := again.Unmarshal(m.Marshal()); err != nil || m != again {
			t.Fatalf("re-decode: %v\n%+v\n%+v", err, m, again)
		}
	})
}
