package controlplane_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

// TestBuildProgressHeartbeat proves that a build never stays silent for more
// than ProgressInterval: each tick prints what the step is doing, first
// resolving, then downloading, then compiling, from go build -v's output.
func TestBuildProgressHeartbeat(t *testing.T) {
	var log enginetest.SyncBuffer
	clock := clocktesting.NewFakeClock(time.Now())
	sink, stop := controlplane.Heartbeat(&log, clock, "kube-apiserver")
	defer stop()
	assert.Contains(t, log.String(), "step 1/1: building kube-apiserver (example.com/cmd/kube-apiserver, example v1; sources from the Go module proxy)")

	tick := func(want string) {
		t.Helper()
		before := strings.Count(log.String(), "\n")
		assert.Eventually(t, func() bool { return clock.HasWaiters() }, 10*time.Second, time.Millisecond)
		clock.Step(controlplane.ProgressInterval)
		assert.Eventually(t, func() bool { return strings.Count(log.String(), "\n") > before }, 10*time.Second, time.Millisecond)
		lines := strings.Split(strings.TrimSpace(log.String()), "\n")
		assert.Contains(t, lines[len(lines)-1], want)
	}
	tick(fmt.Sprintf("[%s] step 1/1 kube-apiserver (", controlplane.ProgressInterval))
	tick("resolving modules")
	_, _ = fmt.Fprint(sink, "go: downloading k8s.io/api v0.37.2\ngo: downloading k8s.io/apimachinery v0.")
	tick("downloading modules: 1 so far, now k8s.io/api v0.37.2")
	_, _ = fmt.Fprint(sink, "37.2\nk8s.io/api/core/v1\nk8s.io/kubernetes/cmd/kube-apiserver\n")
	tick("2 packages compiled, now k8s.io/kubernetes/cmd/kube-apiserver")
}
