package controlplane

import (
	"context"
	"io"

	clocktesting "k8s.io/utils/clock/testing"
)

// SweepStaleDirs is sweepStaleDirs for tests.
var SweepStaleDirs = sweepStaleDirs

// SetFreePorts makes Start pick ports with f until restore is called.
func SetFreePorts(f func(n int) ([]int, error)) (restore func()) {
	old := freePorts
	freePorts = f
	return func() { freePorts = old }
}

// Ports returns every port the control plane listens on, by component.
func (c *ControlPlane) Ports() map[string]int {
	return map[string]int{
		"etcd client":             c.etcdPort,
		"etcd peer":               c.etcdPeerPort,
		"kube-apiserver":          c.apiPort,
		"kube-controller-manager": c.kcmPort,
	}
}

// Heartbeat runs a build progress for one step of the given binaries on a
// fake clock: it returns the step's output sink, a function that advances
// the clock by ProgressInterval, and stop.
func Heartbeat(log io.Writer, c *clocktesting.FakeClock, names ...string) (sink io.Writer, stop func()) {
	p := newProgressWithClock(log, 1, c)
	var bs []binary
	for _, n := range names {
		bs = append(bs, binary{name: n, pkg: "example.com/cmd/" + n, version: "example v1"})
	}
	s := p.step(0, bs)
	return s, p.start(context.Background())
}
