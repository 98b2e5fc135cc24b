package controlplane

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
