package registry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wre-dev/wre/engine/memo"
)

// Values of the result label of wre_module_loads_total.
const (
	ResultSuccess = "success"
	ResultError   = "error"
)

// Metrics are the module registry's metrics.
type Metrics struct {
	// Info is 1 for the version each module runs.
	Info *prometheus.GaugeVec
	// Loads counts load attempts by module and result.
	Loads *prometheus.CounterVec
	// LoadSeconds observes successful loads, from the ConfigMaps to the
	// version serving reconciles.
	LoadSeconds prometheus.Histogram
	// Memo receives the memoized modules' skips and read sets.
	Memo *memo.Metrics
}

// NewMetrics creates the registry metrics and registers them with reg (for
// the engine: engine/metrics.Registry.Registerer()); a nil reg registers
// nowhere.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wre_module_info",
			Help: "1 for the version (digest of the wasm, ABI) each loaded module runs.",
		}, []string{"module", "digest", "abi"}),
		Loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wre_module_loads_total",
			Help: "Attempts to load a module version, by result (success, error).",
		}, []string{"module", "result"}),
		LoadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wre_module_load_seconds",
			Help:    "Time to load a module version: assemble, verify, compile, instantiate and start or swap.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Info, m.Loads, m.LoadSeconds} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	var err error
	if m.Memo, err = memo.NewMetrics(reg); err != nil {
		return nil, err
	}
	return m, nil
}

// initModule creates the load series of a module up front, when its
// ConfigMaps are first seen: the error series of a module that loaded exists
// at 0 before its first failure, so increase() and rate() in alerts see that
// failure (a series born at 1 has no earlier sample to increase from).
func (m *Metrics) initModule(name string) {
	m.Loads.WithLabelValues(name, ResultSuccess)
	m.Loads.WithLabelValues(name, ResultError)
}

// removeModule deletes every series of a module that is gone.
func (m *Metrics) removeModule(name string) {
	m.Info.DeletePartialMatch(prometheus.Labels{"module": name})
	m.Loads.DeletePartialMatch(prometheus.Labels{"module": name})
	m.Memo.RemoveModule(name)
}

// running records that name runs digest with abi, replacing earlier versions.
func (m *Metrics) running(name, digest, abi string) {
	m.Info.DeletePartialMatch(prometheus.Labels{"module": name})
	m.Info.WithLabelValues(name, digest, abi).Set(1)
}
