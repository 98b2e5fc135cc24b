package informers

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions of Registry.Collector.
var (
	referencesDesc = prometheus.NewDesc("wre_informer_references",
		"Number of references (controllers) holding the shared informer of a resource.",
		[]string{"group", "version", "resource"}, nil)
	syncedDesc = prometheus.NewDesc("wre_informer_synced",
		"Whether the shared informer of a resource has stored its initial list (1) or not yet (0).",
		[]string{"group", "version", "resource"}, nil)
	watchConnectedDesc = prometheus.NewDesc("wre_informer_watch_connected",
		"Whether the last list or watch request of the shared informer of a resource succeeded (1) or failed (0).",
		[]string{"group", "version", "resource"}, nil)
	watchDownDesc = prometheus.NewDesc("wre_informer_watch_down_seconds",
		"Seconds since the last successful list or watch of the shared informer of a resource, while its watch is not connected; 0 while it is.",
		[]string{"group", "version", "resource"}, nil)
)

// Collector returns a Prometheus collector of the registry's running informers:
// wre_informer_references, wre_informer_synced, wre_informer_watch_connected
// and wre_informer_watch_down_seconds, one series per resource, read at scrape
// time so that a released resource's series disappear. The watch series exist
// for informers whose clients the registry built (not for clients given in
// Options). Register it once, with the engine's metrics registry.
func (r *Registry) Collector() prometheus.Collector { return collector{r} }

// collector reports a Registry's state at scrape time.
type collector struct{ r *Registry }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- referencesDesc
	ch <- syncedDesc
	ch <- watchConnectedDesc
	ch <- watchDownDesc
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	for inf, refs := range c.r.snapshot() {
		gvr := inf.GVR()
		synced := 0.0
		if inf.HasSynced() {
			synced = 1
		}
		ch <- prometheus.MustNewConstMetric(referencesDesc, prometheus.GaugeValue, float64(refs), gvr.Group, gvr.Version, gvr.Resource)
		ch <- prometheus.MustNewConstMetric(syncedDesc, prometheus.GaugeValue, synced, gvr.Group, gvr.Version, gvr.Resource)
		if inf.health == nil {
			continue
		}
		connected, down := inf.health.state()
		up := 0.0
		if connected {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(watchConnectedDesc, prometheus.GaugeValue, up, gvr.Group, gvr.Version, gvr.Resource)
		ch <- prometheus.MustNewConstMetric(watchDownDesc, prometheus.GaugeValue, down.Seconds(), gvr.Group, gvr.Version, gvr.Resource)
	}
}
