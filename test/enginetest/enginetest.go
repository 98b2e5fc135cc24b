// Package enginetest holds what the engine's integration test packages share.
package enginetest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wre-dev/wre/test/controlplane"
)

// RunMain is controlplane.RunMain followed, when the tests passed, by a goleak
// check: every engine part the tests started must have stopped. Use it from
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(enginetest.RunMain(m, &cp)) }
func RunMain(m *testing.M, cp **controlplane.ControlPlane) int {
	code := controlplane.RunMain(m, cp)
	if code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
		return 1
	}
	return 0
}
