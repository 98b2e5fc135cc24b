//go:build !(amd64 || arm64 || wasm || 386 || riscv64 || loong64 || ppc64le || mipsle || mips64le)

package flat

import "encoding/binary"

// load64 reads the little-endian u64 at b[off:].
func load64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
