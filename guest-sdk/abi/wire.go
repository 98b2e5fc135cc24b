package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed abi message")

// FieldHeaderSize is the size of a field header: tag (u16) and length (u32).
const FieldHeaderSize = 6

func appendHeader(b []byte, tag uint16, n int) []byte {
	b = binary.LittleEndian.AppendUint16(b, tag)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// appendString appends a string field; empty strings are omitted because the
// absence of a field means its zero value.
func appendString(b []byte, tag uint16, s string) []byte {
	if s == "" {
		return b
	}
	return append(appendHeader(b, tag, len(s)), s...)
}

// appendBytes appends a bytes field, even when v is empty, so that repeated
// fields keep their count.
func appendBytes(b []byte, tag uint16, v []byte) []byte {
	return append(appendHeader(b, tag, len(v)), v...)
}

func appendUint64(b []byte, tag uint16, v uint64) []byte {
	if v == 0 {
		return b
	}
	return binary.LittleEndian.AppendUint64(appendHeader(b, tag, 8), v)
}

func appendBool(b []byte, tag uint16, v bool) []byte {
	if !v {
		return b
	}
	return append(appendHeader(b, tag, 1), 1)
}

// walk calls fn for every field of msg in order. It stops at the first error.
func walk(msg []byte, fn func(tag uint16, val []byte) error) error {
	for off := 0; off < len(msg); {
		if len(msg)-off < FieldHeaderSize {
			return fmt.Errorf("%w: truncated field header at offset %d", ErrMalformed, off)
		}
		tag := binary.LittleEndian.Uint16(msg[off:])
		n := uint64(binary.LittleEndian.Uint32(msg[off+2:]))
		off += FieldHeaderSize
		if n > uint64(len(msg)-off) {
			return fmt.Errorf("%w: field %d length %d exceeds remaining %d bytes", ErrMalformed, tag, n, len(msg)-off)
		}
		if err := fn(tag, msg[off:off+int(n)]); err != nil {
			return err
		}
		off += int(n)
	}
	return nil
}

func decodeUint64(tag uint16, val []byte) (uint64, error) {
	if len(val) != 8 {
		return 0, fmt.Errorf("%w: field %d: integer must be 8 bytes, got %d", ErrMalformed, tag, len(val))
	}
	return binary.LittleEndian.Uint64(val), nil
}

func decodeInt64(tag uint16, val []byte) (int64, error) {
	v, err := decodeUint64(tag, val)
	return int64(v), err
}

func decodeBool(tag uint16, val []byte) (bool, error) {
	if len(val) != 1 || val[0] > 1 {
		return false, fmt.Errorf("%w: field %d: bool must be one byte 0 or 1", ErrMalformed, tag)
	}
	return val[0] == 1, nil
}

func decodeInt32(tag uint16, val []byte) (int32, error) {
	v, err := decodeUint64(tag, val)
	if err != nil {
		return 0, err
	}
	if v > math.MaxInt32 {
		return 0, fmt.Errorf("%w: field %d: %d out of range", ErrMalformed, tag, v)
	}
	return int32(v), nil
}

func cloneBytes(v []byte) []byte { return append([]byte{}, v...) }
