// Package flat is the record encoding of ABI v2 (docs/abi.md §10): a message
// is a fixed table of 8-byte slots followed by a data area, so a reader finds
// field i at offset 4+8*i without parsing anything before it.
//
// Guarantees:
//   - Every accessor of Record is total: a slot past the table, or a range
//     that leaves the record, reads as the zero value; nothing panics on any
//     input. Check reports such a record with an error naming the slot.
//   - A Record never copies: String and Bytes return views of the record's
//     memory (valid while that memory is). The Builder never reads what it
//     is given after the call returns.
//   - Builder and Record agree byte for byte: Parse(b.Bytes()) reads back
//     every value set (FuzzRoundTrip).
package flat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// Kind is what a slot holds, and so how it is laid out.
type Kind uint8

// Kinds of slot. Scalars live in the slot itself; the others are a range
// (u32 offset, u32 length) or a table (u32 offset, u32 count) into the data
// area, with offsets relative to the record's first byte.
const (
	// Int is an i64 in the slot.
	Int Kind = iota + 1
	// Bool is 0 or 1 in the slot (a u64).
	Bool
	// String is a range of UTF-8 bytes.
	String
	// Bytes is a range of bytes: JSON of a subtree, or a nested record.
	Bytes
	// Strings is a table of count ranges (8 bytes each), in order.
	Strings
	// Map is a table of count key/value range pairs (16 bytes each), keys
	// sorted byte-wise and unique.
	Map
	// Records is a list of objects: laid out as Strings, each element a
	// nested record of the element projection (docs/abi.md §10.3). Check
	// verifies the table; the element records are checked against their
	// own kinds by whoever knows them.
	Records
)

var kindNames = [...]string{Int: "int", Bool: "bool", String: "string", Bytes: "bytes", Strings: "strings", Map: "map", Records: "records"}

// String returns the kind's name as manifests and docs spell it.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return Kind(k), true
		}
	}
	return 0, false
}

const (
	headerSize = 4
	slotSize   = 8
	// MaxSlots bounds the table of one record.
	MaxSlots = 1 << 12
)

// ErrMalformed is wrapped by every error of Parse and Check.
var ErrMalformed = errors.New("malformed flat record")

// Record is a read-only view of an encoded record. n is its slot count,
// 0 when the table does not fit in b.
type Record struct {
	b []byte
	n int
}

// Parse checks the header of b and returns the record it holds. Slot
// contents are checked lazily by the accessors, or all at once by Check.
func Parse(b []byte) (Record, error) {
	if len(b) < headerSize {
		return Record{}, fmt.Errorf("%w: %d bytes, shorter than the header", ErrMalformed, len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	if n > MaxSlots || uint64(headerSize)+uint64(n)*slotSize > uint64(len(b)) {
		return Record{}, fmt.Errorf("%w: %d slots do not fit in %d bytes", ErrMalformed, n, len(b))
	}
	return Record{b: b, n: int(n)}, nil
}

// View returns the record in b without checking it, for memory the caller
// trusts (a Go guest reading what the host wrote): the accessors stay total.
func View(b []byte) Record { return Record{b: b, n: slots(b)} }

// slots returns the slot count of the record in b, or 0 when its table
// does not fit.
func slots(b []byte) int {
	if len(b) < headerSize {
		return 0
	}
	n := binary.LittleEndian.Uint32(b)
	if n > MaxSlots || uint64(headerSize)+uint64(n)*slotSize > uint64(len(b)) {
		return 0
	}
	return int(n)
}

// Raw returns the record's bytes.
func (r Record) Raw() []byte { return r.b }

// Len returns the number of slots; 0 for an empty or invalid record.
func (r Record) Len() int { return r.n }

// slot returns slot i, or 0 past the table. It is small enough to inline:
// every call costs a wasm guest a loop check.
func (r Record) slot(i int) uint64 {
	if uint(i) >= uint(r.n) {
		return 0
	}
	return load64(r.b, headerSize+i*slotSize)
}

// Int returns the i64 of slot i.
func (r Record) Int(i int) int64 { return int64(r.slot(i)) }

// Bool returns the bool of slot i.
func (r Record) Bool(i int) bool { return r.slot(i) != 0 }

// span returns the data range of a packed (offset, length).
func (r Record) span(v uint64) []byte {
	off, n := uint32(v), uint32(v>>32)
	if uint64(off)+uint64(n) > uint64(len(r.b)) {
		return nil
	}
	return r.b[off : off+n : off+n]
}

// Bytes returns the bytes of the range in slot i, a view of the record.
func (r Record) Bytes(i int) []byte { return r.span(r.slot(i)) }

// String returns the string of the range in slot i, a view of the record:
// it changes if the record's memory does, so clone it (strings.Clone) to keep
// it longer than that memory. Written out rather than as view(r.Bytes(i)) to
// stay within the inlining budget.
func (r Record) String(i int) string {
	v := r.slot(i)
	off, end := uint64(uint32(v)), uint64(uint32(v))+v>>32
	if end > uint64(len(r.b)) || end == off {
		return ""
	}
	return unsafe.String(&r.b[off], end-off)
}

// Record returns the nested record in the range of slot i (zero when the
// slot is empty or invalid).
func (r Record) Record(i int) Record {
	return View(r.Bytes(i))
}

// Has reports whether slot i holds a non-empty range, a non-zero scalar or
// a non-empty table.
func (r Record) Has(i int) bool { return r.slot(i) != 0 }

// table returns the entries of the table in slot i, each width bytes.
func (r Record) table(i, width int) (entries []byte, count int) {
	v := r.slot(i)
	off, n := uint64(uint32(v)), uint64(uint32(v>>32))
	if n > uint64(len(r.b)) || off+n*uint64(width) > uint64(len(r.b)) {
		return nil, 0
	}
	return r.b[off : off+n*uint64(width)], int(n)
}

// List is a view of a Strings slot.
type List struct {
	r       Record
	entries []byte
	n       int
}

// List returns the list in slot i.
func (r Record) List(i int) List {
	e, n := r.table(i, 8)
	return List{r: r, entries: e, n: n}
}

// Len returns the number of elements.
func (l List) Len() int { return l.n }

// Bytes returns element j (a view).
func (l List) Bytes(j int) []byte {
	if j < 0 || j >= l.n {
		return nil
	}
	return l.r.span(binary.LittleEndian.Uint64(l.entries[j*8:]))
}

// At returns element j as a string view.
func (l List) At(j int) string { return view(l.Bytes(j)) }

// Record returns element j as a nested record (lists of objects).
func (l List) Record(j int) Record { return View(l.Bytes(j)) }

// Contains reports whether s is an element.
func (l List) Contains(s string) bool {
	for j := range l.n {
		if l.At(j) == s {
			return true
		}
	}
	return false
}

// StringMap is a view of a Map slot: keys sorted, so lookups are binary searches.
type StringMap struct {
	r       Record
	entries []byte
	n       int
}

// Map returns the map in slot i.
func (r Record) Map(i int) StringMap {
	e, n := r.table(i, 16)
	return StringMap{r: r, entries: e, n: n}
}

// Len returns the number of pairs.
func (m StringMap) Len() int { return m.n }

// Key returns the key of pair j (a view).
func (m StringMap) Key(j int) string {
	if j < 0 || j >= m.n {
		return ""
	}
	return view(m.r.span(binary.LittleEndian.Uint64(m.entries[j*16:])))
}

// Value returns the value of pair j (a view).
func (m StringMap) Value(j int) string {
	if j < 0 || j >= m.n {
		return ""
	}
	return view(m.r.span(binary.LittleEndian.Uint64(m.entries[j*16+8:])))
}

// Get returns the value of key and whether it is present.
func (m StringMap) Get(key string) (string, bool) {
	lo, hi := 0, m.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.Key(mid) < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < m.n && m.Key(lo) == key {
		return m.Value(lo), true
	}
	return "", false
}

// Equal reports whether m and o hold the same pairs.
func (m StringMap) Equal(o StringMap) bool {
	if m.n != o.n {
		return false
	}
	for j := range m.n {
		if m.Key(j) != o.Key(j) || m.Value(j) != o.Value(j) {
			return false
		}
	}
	return true
}

// Check verifies that the record has at least len(kinds) slots and that
// slot i is a well-formed value of kinds[i]: ranges and tables inside the
// record, bools 0 or 1, map keys sorted and unique. Kinds of 0 are skipped.
func (r Record) Check(kinds []Kind) error {
	n := r.Len()
	if n < len(kinds) {
		return fmt.Errorf("%w: %d slots, want %d", ErrMalformed, n, len(kinds))
	}
	for i, k := range kinds {
		v := r.slot(i)
		bad := func(what string) error { return fmt.Errorf("%w: slot %d (%s): %s", ErrMalformed, i, k, what) }
		switch k {
		case 0, Int:
		case Bool:
			if v > 1 {
				return bad(fmt.Sprintf("value %d is neither 0 nor 1", v))
			}
		case String, Bytes:
			if v != 0 && r.span(v) == nil {
				return bad("range outside the record")
			}
		case Strings, Records:
			if v == 0 {
				continue
			}
			l := r.List(i)
			if l.entries == nil {
				return bad("table outside the record")
			}
			for j := range l.n {
				if e := binary.LittleEndian.Uint64(l.entries[j*8:]); e != 0 && r.span(e) == nil {
					return bad(fmt.Sprintf("element %d outside the record", j))
				}
			}
		case Map:
			if v == 0 {
				continue
			}
			m := r.Map(i)
			if m.entries == nil {
				return bad("table outside the record")
			}
			for j := range m.n * 2 {
				if e := binary.LittleEndian.Uint64(m.entries[j*8:]); e != 0 && r.span(e) == nil {
					return bad(fmt.Sprintf("pair %d outside the record", j/2))
				}
			}
			for j := 1; j < m.n; j++ {
				if m.Key(j-1) >= m.Key(j) {
					return bad(fmt.Sprintf("keys %q and %q not sorted and unique", m.Key(j-1), m.Key(j)))
				}
			}
		default:
			return bad("unknown kind")
		}
	}
	return nil
}

// view returns b as a string without copying.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
