package guest

import "github.com/wre-dev/wre/guest-sdk/abi"

// Caller performs host calls; it is the transport the SDK runs on.
type Caller interface {
	// Call performs op with an encoded abi.Request and returns the encoded
	// abi.Response. An error means the call did not reach the host.
	Call(op abi.Op, req []byte) ([]byte, error)
	// Log writes one log line at level.
	Log(level abi.Level, msg []byte)
}
