package memo

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the memoization metrics, by module.
type Metrics struct {
	// Skipped counts requests skipped because their read set held.
	Skipped *prometheus.CounterVec
	// Entries is the number of read sets held.
	Entries *prometheus.GaugeVec
	// Evictions counts read sets evicted to stay within the size limit.
	Evictions *prometheus.CounterVec
	// ReadSetObjects observes the object fingerprints of each read set held
	// (one per get, one per listed object), which its memory grows with.
	ReadSetObjects *prometheus.HistogramVec
}

// NewMetrics creates the memoization metrics and registers them with reg; a
// nil reg registers nowhere. The series of a module exist from InitModule on.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wre_reconciles_skipped_total",
			Help: "Reconciles of memoized modules skipped without entering the guest because everything they read was unchanged.",
		}, []string{"module"}),
		Entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wre_memo_entries",
			Help: "Read sets a memoized module holds (one per object whose last reconcile changed nothing).",
		}, []string{"module"}),
		Evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wre_memo_evictions_total",
			Help: "Read sets evicted to stay within the memo size limit; the next reconcile of an evicted object runs.",
		}, []string{"module"}),
		ReadSetObjects: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wre_read_set_objects",
			Help:    "Objects in the read set of a memoized reconcile (the primary, each get and each listed object).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, []string{"module"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Skipped, m.Entries, m.Evictions, m.ReadSetObjects} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// InitModule creates the series of module up front, so rate() sees its
// first skip.
func (m *Metrics) InitModule(module string) {
	m.Skipped.WithLabelValues(module)
	m.Entries.WithLabelValues(module)
	m.Evictions.WithLabelValues(module)
	m.ReadSetObjects.WithLabelValues(module)
}

// RemoveModule deletes the series of a module that is gone.
func (m *Metrics) RemoveModule(module string) {
	for _, v := range []interface{ DeleteLabelValues(...string) bool }{m.Skipped, m.Entries, m.Evictions, m.ReadSetObjects} {
		v.DeleteLabelValues(module)
	}
}
