// Package abi is the wire codec of the wre host-function ABI, shared by the host
// (github.com/wre-dev/wre/host) and guests (the Go guest SDK, or any guest written
// from docs/abi.md, which is the normative specification).
//
// Guarantees:
//   - Only the standard library is imported, so tiny guests build fast.
//   - Every message is a sequence of little-endian tag-length-value fields;
//     decoders ignore unknown tags, so fields and encodings can be added without a
//     new ABI version.
//   - Decoders never panic on arbitrary input: a truncated field, a length past the
//     end, or a fixed-width value of the wrong width is an error (ErrMalformed).
//   - Decoded byte slices and strings never alias the input: callers may reuse or
//     free the buffer they decoded from.
package abi
