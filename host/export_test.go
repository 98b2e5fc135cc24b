package host

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// SetTrapEventTimeout shortens how long m waits for the reconciled object
// when recording a trap event.
func SetTrapEventTimeout(m *Module, d time.Duration) { m.trapEventTimeout = d }

// SetCompileHook makes rt call f before each compile starts, on the
// goroutine of the Compile call that compiles.
func SetCompileHook(rt *Runtime, f func(digest string)) { rt.compileHook = f }

// CompileWaiters returns how many Compile calls have waited for the compile
// of wasm in flight; 0 when none is.
func CompileWaiters(rt *Runtime, wasm []byte) int {
	sum := sha256.Sum256(wasm)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if c, ok := rt.compiling[hex.EncodeToString(sum[:])]; ok {
		return c.waiters
	}
	return 0
}
