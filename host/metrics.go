package host

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// Trap reasons, the values of the reason label of wre_guest_traps_total.
const (
	TrapTimeout  = "timeout"  // the per-reconcile timeout stopped the guest
	TrapCanceled = "canceled" // the caller's context was canceled (shutdown)
	TrapOOM      = "oom"      // linear memory would have grown past the cap
	TrapPanic    = "panic"    // the guest reported a recovered panic, or its runtime printed a panic or fatal error
	TrapExit     = "exit"     // the guest called proc_exit
	TrapWasm     = "trap"     // a WebAssembly trap: unreachable, out of bounds, …
	TrapProtocol = "protocol" // the guest broke the ABI (bad reconcile response, bad allocation)
	TrapInit     = "init"     // instantiation or _initialize failed
)

var trapReasons = []string{TrapTimeout, TrapCanceled, TrapOOM, TrapPanic, TrapExit, TrapWasm, TrapProtocol, TrapInit}

// Metrics are the Prometheus collectors of the host. One value serves every
// module of a Runtime; series are labelled by module name.
type Metrics struct {
	HostCalls        *prometheus.CounterVec   // wre_host_calls_total{module,op,code}
	HostCallDuration *prometheus.HistogramVec // wre_host_call_duration_seconds{module,op}
	GuestTraps       *prometheus.CounterVec   // wre_guest_traps_total{module,reason}
	Instances        *prometheus.GaugeVec     // wre_module_instances{module}
	IdleClosed       *prometheus.CounterVec   // wre_module_instances_idle_closed_total{module}
	GuestMemory      *prometheus.GaugeVec     // wre_guest_memory_bytes{module}
	Runaways         *prometheus.GaugeVec     // wre_guest_runaway_instances{module}
	CompileSeconds   prometheus.Histogram     // wre_module_compile_seconds
	LogDroppedLines  *prometheus.CounterVec   // wre_module_log_dropped_lines_total{module}
	LogDroppedBytes  *prometheus.CounterVec   // wre_module_log_dropped_bytes_total{module}

	mu      sync.Mutex
	modules map[string]int // running Modules per name; series go when it drops to 0
}

// NewMetrics creates the host collectors and registers them with reg; a nil reg
// leaves them unregistered. It fails when a collector of the same name is
// already registered.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		modules: map[string]int{},
		HostCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wre_host_calls_total",
			Help: "Host calls made by guests, by operation and resulting status code (403 = denied by permissions).",
		}, []string{"module", "op", "code"}),
		HostCallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wre_host_call_duration_seconds",
			Help:    "Time the host spent serving a host call, including API server round trips.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
		}, []string{"module", "op"}),
		GuestTraps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wre_guest_traps_total",
			Help: "Reconciles that ended with a discarded instance, by reason (timeout, oom, panic, trap, exit, protocol, init, canceled).",
		}, []string{"module", "reason"}),
		Instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wre_module_instances",
			Help: "Live instances of a module (idle and busy).",
		}, []string{"module"}),
		IdleClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wre_module_instances_idle_closed_total",
			Help: "Instances of a module closed because they stayed unused for the idle timeout; the next reconcile creates one again.",
		}, []string{"module"}),
		GuestMemory: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wre_guest_memory_bytes",
			Help: "Linear memory held by the live instances of a module.",
		}, []string{"module"}),
		Runaways: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wre_guest_runaway_instances",
			Help: "Instances whose reconcile ended at its timeout while their guest code kept running (only with trusted guests, whose loops are not checked); they are closed when that code returns.",
		}, []string{"module"}),
		LogDroppedLines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wre_module_log_dropped_lines_total",
			Help: "Guest log lines dropped because a reconcile (or _initialize) logged more than its limit of lines or bytes.",
		}, []string{"module"}),
		LogDroppedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wre_module_log_dropped_bytes_total",
			Help: "Bytes of the guest log lines counted by wre_module_log_dropped_lines_total.",
		}, []string{"module"}),
		CompileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wre_module_compile_seconds",
			Help:    "Time to compile a module, including loading it from the compilation cache.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 10),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.HostCalls, m.HostCallDuration, m.GuestTraps, m.Instances, m.IdleClosed, m.GuestMemory, m.Runaways, m.CompileSeconds, m.LogDroppedLines, m.LogDroppedBytes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// initModule creates the series of a module up front, so dashboards and alerts
// see zeros rather than absent series.
func (m *Metrics) initModule(module string) {
	m.mu.Lock()
	m.modules[module]++
	m.mu.Unlock()
	for _, op := range abi.Ops() {
		m.HostCalls.WithLabelValues(module, op.String(), "200")
		m.HostCalls.WithLabelValues(module, op.String(), "403")
		m.HostCallDuration.WithLabelValues(module, op.String())
	}
	for _, r := range trapReasons {
		m.GuestTraps.WithLabelValues(module, r)
	}
	m.Instances.WithLabelValues(module)
	m.IdleClosed.WithLabelValues(module)
	m.GuestMemory.WithLabelValues(module)
	m.Runaways.WithLabelValues(module)
	m.LogDroppedLines.WithLabelValues(module)
	m.LogDroppedBytes.WithLabelValues(module)
}

// forgetModule deletes the series of a module name once no Module of that name
// runs any more. Two versions of a module overlap during a hot swap, so the
// series survive closing the old one.
func (m *Metrics) forgetModule(module string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.modules[module]--; m.modules[module] > 0 {
		return
	}
	delete(m.modules, module)
	l := prometheus.Labels{"module": module}
	m.HostCalls.DeletePartialMatch(l)
	m.HostCallDuration.DeletePartialMatch(l)
	m.GuestTraps.DeletePartialMatch(l)
	m.Instances.DeletePartialMatch(l)
	m.IdleClosed.DeletePartialMatch(l)
	m.GuestMemory.DeletePartialMatch(l)
	m.Runaways.DeletePartialMatch(l)
	m.LogDroppedLines.DeletePartialMatch(l)
	m.LogDroppedBytes.DeletePartialMatch(l)
}
