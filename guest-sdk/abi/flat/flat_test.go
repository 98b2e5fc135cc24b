package flat_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/wre-dev/wre/guest-sdk/abi/flat"
)

var kinds = []flat.Kind{flat.Int, flat.Bool, flat.String, flat.Bytes, flat.Strings, flat.Map, flat.Bytes}

func build(b *flat.Builder) []byte {
	nested := flat.Builder{}
	nested.Reset(1)
	nested.SetString(0, "inner")
	b.Reset(len(kinds))
	b.SetInt(0, -42)
	b.SetBool(1, true)
	b.SetString(2, "blue")
	b.SetBytes(3, []byte(`{"a":1}`))
	b.SetStrings(4, []string{"x", "", "zz"})
	b.SetMap(5, map[string]string{"b": "2", "a": "1", "c": ""})
	b.SetBytes(6, nested.Bytes())
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	var b flat.Builder
	r, err := flat.Parse(build(&b))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(kinds); err != nil {
		t.Fatal(err)
	}
	if r.Len() != len(kinds) || r.Int(0) != -42 || !r.Bool(1) || r.String(2) != "blue" || string(r.Bytes(3)) != `{"a":1}` {
		t.Fatalf("scalars/ranges read back wrong: %d %v %q %q", r.Int(0), r.Bool(1), r.String(2), r.Bytes(3))
	}
	l := r.List(4)
	if l.Len() != 3 || l.At(0) != "x" || l.At(1) != "" || l.At(2) != "zz" || !l.Contains("zz") || l.Contains("y") {
		t.Fatalf("list read back wrong")
	}
	m := r.Map(5)
	if m.Len() != 3 || m.Key(0) != "a" || m.Key(2) != "c" {
		t.Fatalf("map keys not sorted: %q %q", m.Key(0), m.Key(2))
	}
	for k, want := range map[string]string{"a": "1", "b": "2", "c": ""} {
		if v, ok := m.Get(k); !ok || v != want {
			t.Errorf("Get(%q) = %q, %v", k, v, ok)
		}
	}
	if _, ok := m.Get("d"); ok {
		t.Error("Get of an absent key found it")
	}
	if !m.Equal(r.Map(5)) || m.Equal(r.Map(4)) {
		t.Error("Equal")
	}
	if r.Record(6).String(0) != "inner" {
		t.Error("nested record")
	}
	// Slots past the table and of other kinds read as zero values.
	if r.Int(99) != 0 || r.String(-1) != "" || r.List(99).Len() != 0 {
		t.Error("out-of-range slots are not zero")
	}
}

func TestBuilderReuseDoesNotAllocate(t *testing.T) {
	var b flat.Builder
	build(&b)
	allocs := testing.AllocsPerRun(100, func() {
		b.Reset(3)
		b.SetInt(0, 1)
		b.SetString(1, "name")
		b.SetStrings(2, []string{"a", "b"})
	})
	if allocs != 0 {
		t.Fatalf("reused Builder allocated %v times per record", allocs)
	}
}

func TestCheckReportsMalformedRecords(t *testing.T) {
	var b flat.Builder
	good := build(&b)
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"short header", func(p []byte) []byte { return p[:2] }, "shorter than the header"},
		{"table past the end", func(p []byte) []byte { binary.LittleEndian.PutUint32(p, 1000); return p }, "do not fit"},
		{"range past the end", func(p []byte) []byte { binary.LittleEndian.PutUint64(p[4+2*8:], 4<<32|uint64(len(p))); return p }, "slot 2 (string): range outside"},
		{"bool not 0 or 1", func(p []byte) []byte { binary.LittleEndian.PutUint64(p[4+8:], 7); return p }, "neither 0 nor 1"},
		{"list table past the end", func(p []byte) []byte { binary.LittleEndian.PutUint64(p[4+4*8:], 1<<40|8); return p }, "slot 4 (strings): table outside"},
		{"map keys unsorted", func(p []byte) []byte {
			// swap the first two pairs' key ranges
			v := binary.LittleEndian.Uint64(p[4+5*8:])
			off := uint32(v)
			k0 := binary.LittleEndian.Uint64(p[off:])
			k1 := binary.LittleEndian.Uint64(p[off+16:])
			binary.LittleEndian.PutUint64(p[off:], k1)
			binary.LittleEndian.PutUint64(p[off+16:], k0)
			return p
		}, "not sorted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.edit(append([]byte{}, good...))
			r, err := flat.Parse(p)
			if err == nil {
				err = r.Check(kinds)
			}
			if err == nil || !errors.Is(err, flat.ErrMalformed) || !contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// FuzzRecord feeds arbitrary bytes to Parse, Check and every accessor: none
// may panic, and what Check accepts must read within the record.
func FuzzRecord(f *testing.F) {
	var b flat.Builder
	f.Add(build(&b))
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := flat.Parse(p)
		if err != nil {
			r = flat.View(p)
		}
		checked := r.Check(kinds) == nil
		for i := -1; i < r.Len()+1; i++ {
			_ = r.Int(i)
			_ = r.Bool(i)
			s := r.String(i)
			l := r.List(i)
			for j := range l.Len() {
				_ = l.At(j)
				_ = l.Record(j).Len()
			}
			m := r.Map(i)
			for j := range m.Len() {
				_, _ = m.Get(m.Key(j))
			}
			_ = r.Record(i).String(0)
			if checked && len(s) > len(p) {
				t.Fatalf("string of %d bytes from a record of %d", len(s), len(p))
			}
		}
	})
}

// FuzzRoundTrip builds records from fuzzed values and reads them back.
func FuzzRoundTrip(f *testing.F) {
	f.Add(int64(3), true, "a", "k", "v", []byte("x"))
	f.Fuzz(func(t *testing.T, n int64, ok bool, s, k, v string, raw []byte) {
		var b flat.Builder
		b.Reset(6)
		b.SetInt(0, n)
		b.SetBool(1, ok)
		b.SetString(2, s)
		b.SetBytes(3, raw)
		b.SetStrings(4, []string{s, k})
		b.SetMap(5, map[string]string{k: v})
		r, err := flat.Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Check(kinds[:6]); err != nil {
			t.Fatal(err)
		}
		if r.Int(0) != n || r.Bool(1) != ok || r.String(2) != s || string(r.Bytes(3)) != string(raw) ||
			r.List(4).At(0) != s || r.List(4).At(1) != k {
			t.Fatal("values differ after a round trip")
		}
		if got, found := r.Map(5).Get(k); !found || got != v {
			t.Fatalf("map: %q %v", got, found)
		}
	})
}

// TestTablesSurviveGrowth writes tables whose data outgrows the buffer many
// times over: every element must read back (a write through a slice taken
// before append moved the buffer would lose some).
func TestTablesSurviveGrowth(t *testing.T) {
	var list []string
	m := map[string]string{}
	var raw [][]byte
	for i := range 100 {
		s := string(rune('a'+i%26)) + string(make([]byte, i))
		list = append(list, s)
		m[s] = s + "v"
		raw = append(raw, []byte(s))
	}
	var b flat.Builder
	b.Reset(4)
	b.SetStrings(0, list)
	b.SetMap(1, m)
	b.SetList(2, raw)
	var view flat.Builder
	view.Reset(1)
	view.SetMap(0, m)
	mv := flat.View(view.Bytes()).Map(0)
	b.SetPairs(3, mv.Len(), mv.Key, mv.Value)
	r, err := flat.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check([]flat.Kind{flat.Strings, flat.Map, flat.Strings, flat.Map}); err != nil {
		t.Fatal(err)
	}
	for i, s := range list {
		if r.List(0).At(i) != s || string(r.List(2).Bytes(i)) != s {
			t.Fatalf("element %d lost", i)
		}
		for _, slot := range []int{1, 3} {
			if v, ok := r.Map(slot).Get(s); !ok || v != s+"v" {
				t.Fatalf("map slot %d: key %d lost", slot, i)
			}
		}
	}
}

// TestRecords round-trips a list of objects whose elements hold a list of
// objects of their own, and checks a Records table like a Strings one.
func TestRecords(t *testing.T) {
	type port struct {
		name string
		n    int64
	}
	containers := []struct {
		name  string
		ports []port
	}{{"app", []port{{"http", 80}, {"admin", 9090}}}, {"sidecar", nil}}
	var b flat.Builder
	b.Reset(2)
	b.SetString(0, "before")
	b.SetRecords(1, len(containers), func(j int, e *flat.Builder) {
		e.Reset(2)
		e.SetString(0, containers[j].name)
		ports := containers[j].ports
		e.SetRecords(1, len(ports), func(k int, pe *flat.Builder) {
			pe.Reset(2)
			pe.SetString(0, ports[k].name)
			pe.SetInt(1, ports[k].n)
		})
	})
	r, err := flat.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check([]flat.Kind{flat.String, flat.Records}); err != nil {
		t.Fatal(err)
	}
	l := r.List(1)
	if l.Len() != 2 || r.String(0) != "before" {
		t.Fatalf("got %d elements, slot 0 %q", l.Len(), r.String(0))
	}
	for j, c := range containers {
		e := l.Record(j)
		if err := e.Check([]flat.Kind{flat.String, flat.Records}); err != nil {
			t.Fatalf("element %d: %v", j, err)
		}
		if e.String(0) != c.name || e.List(1).Len() != len(c.ports) {
			t.Fatalf("element %d: %q with %d ports", j, e.String(0), e.List(1).Len())
		}
		for k, p := range c.ports {
			pr := e.List(1).Record(k)
			if pr.String(0) != p.name || pr.Int(1) != p.n {
				t.Errorf("element %d port %d: %q %d", j, k, pr.String(0), pr.Int(1))
			}
		}
	}
	// An empty list leaves the slot zero.
	b.Reset(1)
	b.SetRecords(0, 0, func(int, *flat.Builder) { t.Fatal("called for an empty list") })
	if flat.View(b.Bytes()).Has(0) {
		t.Error("an empty list set the slot")
	}
	// A table past the end is malformed.
	raw := make([]byte, 12)
	binary.LittleEndian.PutUint32(raw, 1)
	binary.LittleEndian.PutUint64(raw[4:], uint64(8)|uint64(5)<<32)
	if err := flat.View(raw).Check([]flat.Kind{flat.Records}); !errors.Is(err, flat.ErrMalformed) {
		t.Errorf("Check of a table past the end = %v", err)
	}
	if k, ok := flat.ParseKind("records"); !ok || k != flat.Records || k.String() != "records" {
		t.Errorf("ParseKind(records) = %v, %v", k, ok)
	}
}
