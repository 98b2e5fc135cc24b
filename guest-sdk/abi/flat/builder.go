package flat

import (
	"encoding/binary"
	"slices"
)

// Builder encodes one record. The zero Builder is not ready: call Reset.
// A Builder is reused across records without allocating once its buffer has
// grown to the largest record.
type Builder struct {
	buf []byte
	n   int
	// elem encodes the elements of SetRecords, one level down; allocated on
	// first use and reused.
	elem *Builder
}

// Reset starts a record of n slots (all zero), reusing the buffer.
func (b *Builder) Reset(n int) {
	b.n = n
	size := headerSize + n*slotSize
	b.buf = slices.Grow(b.buf[:0], size)[:size]
	clear(b.buf)
	binary.LittleEndian.PutUint32(b.buf, uint32(n))
}

// Bytes returns the record; it is valid until the next Reset.
func (b *Builder) Bytes() []byte { return b.buf }

// Size returns the number of bytes written so far.
func (b *Builder) Size() int { return len(b.buf) }

func (b *Builder) put(i int, v uint64) {
	if i < 0 || i >= b.n {
		panic("flat: slot out of range")
	}
	binary.LittleEndian.PutUint64(b.buf[headerSize+i*slotSize:], v)
}

// SetInt stores v in slot i.
func (b *Builder) SetInt(i int, v int64) { b.put(i, uint64(v)) }

// SetBool stores v in slot i.
func (b *Builder) SetBool(i int, v bool) {
	if v {
		b.put(i, 1)
	}
}

// data appends v to the data area and returns its packed range.
func (b *Builder) data(v []byte) uint64 {
	off := len(b.buf)
	b.buf = append(b.buf, v...)
	return uint64(uint32(off)) | uint64(uint32(len(v)))<<32
}

func (b *Builder) dataString(v string) uint64 {
	off := len(b.buf)
	b.buf = append(b.buf, v...)
	return uint64(uint32(off)) | uint64(uint32(len(v)))<<32
}

// SetString stores s in slot i; an empty s leaves the slot zero.
func (b *Builder) SetString(i int, s string) {
	if s != "" {
		b.put(i, b.dataString(s))
	}
}

// SetBytes stores v (JSON, or a nested record) in slot i; an empty v leaves
// the slot zero.
func (b *Builder) SetBytes(i int, v []byte) {
	if len(v) > 0 {
		b.put(i, b.data(v))
	}
}

// table reserves count entries of width bytes and stores its position in slot i.
func (b *Builder) table(i, count, width int) int {
	off := len(b.buf)
	b.buf = append(b.buf, make([]byte, count*width)...)
	b.put(i, uint64(uint32(off))|uint64(uint32(count))<<32)
	return off
}

// SetStrings stores the list in slot i; an empty list leaves the slot zero.
func (b *Builder) SetStrings(i int, list []string) {
	if len(list) == 0 {
		return
	}
	off := b.table(i, len(list), 8)
	for j, s := range list {
		// Appending may move b.buf: take the range before indexing it.
		r := b.dataString(s)
		binary.LittleEndian.PutUint64(b.buf[off+j*8:], r)
	}
}

// SetList stores a list of byte strings (nested records of a list) in slot i.
func (b *Builder) SetList(i int, list [][]byte) {
	if len(list) == 0 {
		return
	}
	off := b.table(i, len(list), 8)
	for j, v := range list {
		r := b.data(v)
		binary.LittleEndian.PutUint64(b.buf[off+j*8:], r)
	}
}

// SetRecords stores a list of count nested records in slot i (kind
// Records): enc(j, e) writes element j into e, which it must Reset first.
// An empty list leaves the slot zero. Nothing allocates once the buffers
// have grown to the largest list.
func (b *Builder) SetRecords(i, count int, enc func(j int, e *Builder)) {
	if count == 0 {
		return
	}
	if b.elem == nil {
		b.elem = new(Builder)
	}
	off := b.table(i, count, 8)
	for j := range count {
		enc(j, b.elem)
		r := b.data(b.elem.buf)
		binary.LittleEndian.PutUint64(b.buf[off+j*8:], r)
	}
}

// SetMap stores m in slot i with its keys sorted; an empty map leaves the
// slot zero.
func (b *Builder) SetMap(i int, m map[string]string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	off := b.table(i, len(keys), 16)
	for j, k := range keys {
		kr := b.dataString(k)
		vr := b.dataString(m[k])
		binary.LittleEndian.PutUint64(b.buf[off+j*16:], kr)
		binary.LittleEndian.PutUint64(b.buf[off+j*16+8:], vr)
	}
}

// SetPairs stores pairs in slot i as a Map; keys must be sorted and unique
// (a Map view's pairs are, so copying one is SetPairs(i, m.Len(), m.Key, m.Value)).
func (b *Builder) SetPairs(i, count int, key, value func(j int) string) {
	if count == 0 {
		return
	}
	off := b.table(i, count, 16)
	for j := range count {
		kr := b.dataString(key(j))
		vr := b.dataString(value(j))
		binary.LittleEndian.PutUint64(b.buf[off+j*16:], kr)
		binary.LittleEndian.PutUint64(b.buf[off+j*16+8:], vr)
	}
}
