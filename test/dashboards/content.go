package dashboards

import "fmt"

// Dashboards returns every wre dashboard by file name under dashboards/.
func Dashboards() map[string]*Dashboard {
	return map[string]*Dashboard{
		"wre-overview.json": overview(),
		"wre-modules.json":  modules(),
	}
}

func sumBy(by, expr string) string { return fmt.Sprintf("sum by (%s) (%s)", by, expr) }

func increase(metric, matchers string) string {
	return fmt.Sprintf("increase(%s{%s}[$__rate_interval])", metric, matchers)
}

// leaderMapping shows leader_election_master_status as words.
func leaderMapping() panelOpt {
	return func(p *Panel) {
		p.FieldConfig.Defaults.Mappings = []any{map[string]any{
			"type": "value",
			"options": map[string]any{
				"0": map[string]any{"text": "standby", "color": "blue", "index": 0},
				"1": map[string]any{"text": "leader", "color": "green", "index": 1},
			},
		}}
		p.FieldConfig.Defaults.Color = map[string]any{"mode": "thresholds"}
		p.FieldConfig.Defaults.Thresholds = &Thresholds{Mode: "absolute", Steps: []Step{{Color: "blue"}}}
	}
}

// exactlyOne colours a stat green at 1 and red otherwise.
func exactlyOne() panelOpt {
	return func(p *Panel) {
		one, two := 1.0, 2.0
		p.FieldConfig.Defaults.Thresholds = &Thresholds{Mode: "absolute", Steps: []Step{{Color: "red"}, {Color: "green", Value: &one}, {Color: "red", Value: &two}}}
	}
}

func overview() *Dashboard {
	reconciles := rate("controller_runtime_reconcile_total", byCtl)
	errors := rate("controller_runtime_reconcile_errors_total", byCtl)
	return dashboard("wre-overview", "wre / Overview",
		"Health of the wre engine and of every module's reconcile loop: throughput, errors, latency, work queues, leader election and the API client.",
		row{"Health", []*Panel{
			stat("Leaders", `sum(max by (pod) (leader_election_master_status{job="$job", namespace=~"$namespace"}))`, width(4), exactlyOne(),
				desc("Replicas holding the leader lease. Exactly one is healthy; 0 means nothing reconciles (WreNoLeader), 2 or more means split brain (WreMultipleLeaders).")),
			stat("Replicas", `count(process_start_time_seconds{job="$job", namespace=~"$namespace"})`, width(4),
				desc("Engine replicas Prometheus scrapes. The leader runs the workers; the others keep warm caches for failover.")),
			stat("Modules", `count(count by (module) (wre_module_info{job="$job", namespace=~"$namespace"}))`, width(4),
				desc("Modules loaded (wre_module_info).")),
			stat("Reconciles/s", `sum(`+reconciles+`)`, width(4), unit("ops")),
			stat("Error ratio", `sum(`+errors+`) / sum(`+reconciles+`)`, width(4), unit("percentunit"), thresholds(0.1),
				desc("Share of reconciles that returned an error. WreReconcileErrorRatioHigh fires above 10% per module.")),
			stat("Queued items", `sum(workqueue_depth{`+byQueue+`})`, width(4), thresholds(100),
				desc("Items waiting in the work queues of the selected modules.")),
		}},
		row{"Reconciles", []*Panel{
			timeseries("Reconciles/s by module and result", []Target{q(sumBy("controller, result", reconciles), "{{controller}} {{result}}")},
				width(12), unit("ops"), stacked(),
				desc("result is success, error, requeue_after (or requeue, kept for controller-runtime dashboards).")),
			timeseries("Error ratio by module", []Target{q(sumBy("controller", errors)+" / "+sumBy("controller", reconciles), "{{controller}}")},
				width(12), unit("percentunit"), thresholds(0.1)),
			timeseries("Reconcile latency p50 / p95 / p99", quantiles("controller_runtime_reconcile_time_seconds", byCtl, "controller", "{{controller}}"),
				width(12), unit("s"), desc("From the controller_runtime_reconcile_time_seconds histogram. WreReconcileSlow fires above a p99 of 5s.")),
			timeseries("Panics, terminal errors and timeouts", []Target{
				q(sumBy("controller", increase("controller_runtime_reconcile_panics_total", byCtl)), "{{controller}} panics"),
				q(sumBy("controller", increase("controller_runtime_terminal_reconcile_errors_total", byCtl)), "{{controller}} terminal errors"),
				q(sumBy("controller", increase("controller_runtime_reconcile_timeouts_total", byCtl)), "{{controller}} timeouts"),
			}, width(12), unit("short"), desc("Terminal errors are not retried; panics and timeouts discard the module instance and are retried with backoff.")),
		}},
		row{"Work queues", []*Panel{
			timeseries("Queue depth", []Target{q(sumBy("name", "workqueue_depth{"+byQueue+"}"), "{{name}}")}, unit("short"),
				desc("One queue per module, named after it. Only the leader works its queues off.")),
			timeseries("Queue depth by priority", []Target{q(sumBy("name, priority", "workqueue_depth_by_priority{"+byQueue+"}"), "{{name}} {{priority}}")}, unit("short"), stacked(),
				desc("Live watch events rank above initial lists and resyncs; waiting items age upwards so none starves.")),
			timeseries("Queue wait p50 / p95 / p99", quantiles("workqueue_queue_duration_seconds", byQueue, "name", "{{name}}"), unit("s"),
				desc("Time from Add to a worker picking the item up.")),
			timeseries("Adds and retries/s", []Target{
				q(sumBy("name", rate("workqueue_adds_total", byQueue)), "{{name}} adds"),
				q(sumBy("name", rate("workqueue_retries_total", byQueue)), "{{name}} retries"),
			}, unit("ops"), desc("Retries are rate-limited requeues after an error.")),
			timeseries("Longest running and unfinished work", []Target{
				q("max by (name) (workqueue_longest_running_processor_seconds{"+byQueue+"})", "{{name}} longest running"),
				q("max by (name) (workqueue_unfinished_work_seconds{"+byQueue+"})", "{{name}} unfinished"),
			}, unit("s"), desc("A value that keeps growing means a reconcile is stuck.")),
			timeseries("Active workers", []Target{
				q(sumBy("controller", "controller_runtime_active_workers{"+byCtl+"}"), "{{controller}} active"),
				q("max by (controller) (controller_runtime_max_concurrent_reconciles{"+byCtl+"})", "{{controller}} max"),
			}, unit("short"), desc("Workers busy against each module's concurrency.")),
		}},
		row{"Replicas and leader election", []*Panel{
			panel("state-timeline", "Leader per replica", []Target{q("max by (pod) (leader_election_master_status{"+scope+"})", "{{pod}}")}, width(12), leaderMapping(),
				desc("Which replica holds the lease over time; a handover shows as a change of colour.")),
			timeseries("Informers", []Target{
				q(sumBy("pod", "wre_informer_references{"+scope+"}"), "{{pod}} references"),
				q("count by (pod) (wre_informer_synced{"+scope+"} == 0)", "{{pod}} not synced"),
			}, width(12), unit("short"), desc("Shared informers held by modules, and those whose initial list has not completed (the pod is not ready until they have).")),
			timeseries("Watches down", []Target{
				q("max by (pod, resource) (wre_informer_watch_down_seconds{"+scope+"})", "{{pod}} {{resource}}"),
				q("count by (pod) (wre_informer_watch_connected{"+scope+"} == 0)", "{{pod}} watches down"),
			}, width(24), unit("s"), desc("Seconds since each informer's last successful list or watch while it cannot reach the API server (0 when connected), and how many watches are down. Changes go unseen while a watch is down; WreWatchDown fires after two minutes.")),
		}},
		row{"API client", []*Panel{
			timeseries("API requests/s by method and code", []Target{q(sumBy("method, code", rate("rest_client_requests_total", scope)), "{{method}} {{code}}")}, unit("reqps")),
			timeseries("API request latency p50 / p95 / p99", quantiles("rest_client_request_duration_seconds", scope, "verb", "{{verb}}"), unit("s")),
			timeseries("API errors/s", []Target{q(sumBy("code", rate("rest_client_requests_total", scope+`, code!~"2.."`)), "{{code}}")}, unit("reqps"),
				desc("409 conflicts are retried; 403 means the engine's RBAC lacks a right (see deploy/base/rbac.yaml); 429 means API priority and fairness throttles the engine.")),
		}},
		row{"Process", []*Panel{
			timeseries("CPU", []Target{q(sumBy("pod", rate("process_cpu_seconds_total", scope)), "{{pod}}")}, unit("short")),
			timeseries("Memory", []Target{
				q(sumBy("pod", "process_resident_memory_bytes{"+scope+"}"), "{{pod}} resident"),
				q(sumBy("pod", "go_memstats_heap_inuse_bytes{"+scope+"}"), "{{pod}} heap in use"),
			}, unit("bytes")),
			timeseries("Goroutines", []Target{q(sumBy("pod", "go_goroutines{"+scope+"}"), "{{pod}}")}, unit("short")),
		}},
	)
}

func modules() *Dashboard {
	info := panel("table", "Loaded modules",
		[]Target{{Expr: "max by (pod, module, digest, abi) (wre_module_info{" + byMod + "})", Instant: true, Format: "table"}},
		width(24), desc("The module versions each replica has loaded: a replica that still shows an old digest has not swapped yet."))
	info.GridPos.H = 6
	info.Transformations = []Transformaton{{ID: "organize", Options: map[string]any{
		"excludeByName": map[string]any{"Time": true, "Value": true},
		"indexByName":   map[string]any{"module": 0, "digest": 1, "abi": 2, "pod": 3},
	}}}
	return dashboard("wre-modules", "wre / Modules",
		"State of the wasm modules: versions loaded, load failures, sandbox traps and timeouts, instances, guest memory and host calls.",
		row{"Versions and loads", []*Panel{
			info,
			timeseries("Loads by result", []Target{q(sumBy("module, result", increase("wre_module_loads_total", byMod)), "{{module}} {{result}}")}, unit("short"), stacked(),
				desc("A failed load leaves the previous version running and records a LoadFailed event on the module ConfigMap (WreModuleLoadFailed).")),
			timeseries("Load failures", []Target{q(sumBy("module", increase("wre_module_loads_total", byMod+`, result="error"`)), "{{module}}")}, unit("short"), thresholds(1)),
			timeseries("Load and compile time p95", []Target{
				q("histogram_quantile(0.95, sum by (le) ("+rate("wre_module_load_seconds_bucket", scope)+"))", "load p95"),
				q("histogram_quantile(0.95, sum by (le) ("+rate("wre_module_compile_seconds_bucket", scope)+"))", "compile p95"),
			}, unit("s"), desc("Compilation is skipped when the on-disk compilation cache (--cache-dir) has the module.")),
		}},
		row{"Sandbox", []*Panel{
			timeseries("Traps by reason", []Target{q(sumBy("module, reason", increase("wre_guest_traps_total", byMod)), "{{module}} {{reason}}")}, width(6), unit("short"),
				desc("A trap fails that reconcile and discards the instance (WreModuleTrapsOrTimeouts).")),
			timeseries("Timeouts and panics", []Target{
				q(sumBy("controller", increase("controller_runtime_reconcile_timeouts_total", byCtl)), "{{controller}} timeouts"),
				q(sumBy("controller", increase("controller_runtime_reconcile_panics_total", byCtl)), "{{controller}} panics"),
			}, width(6), unit("short")),
			timeseries("Instances", []Target{q(sumBy("module", "wre_module_instances{"+byMod+"}"), "{{module}}")}, width(6), unit("short"),
				desc("Instances in each module's pool (at most its concurrency).")),
			timeseries("Guest memory", []Target{q(sumBy("module", "wre_guest_memory_bytes{"+byMod+"}"), "{{module}}")}, width(6), unit("bytes"),
				desc("Linear memory of all instances of a module; each instance is capped by the module's memory limit.")),
		}},
		row{"Host calls", []*Panel{
			timeseries("Host calls/s by op", []Target{q(sumBy("module, op", rate("wre_host_calls_total", byMod)), "{{module}} {{op}}")}, width(12), unit("ops")),
			timeseries("Host call latency p50 / p95 / p99 by op", quantiles("wre_host_call_duration_seconds", byMod, "op", "{{op}}"), width(12), unit("s"),
				desc("Reads served from the informer cache take microseconds; writes go to the API server.")),
			timeseries("Denied host calls/s", []Target{q(sumBy("module, op", rate("wre_host_calls_total", byMod+`, code="403"`)), "{{module}} {{op}}")}, width(12), unit("ops"), thresholds(0.001),
				desc("Calls refused because the module's manifest (or the engine-wide policy, or the impersonated ServiceAccount's RBAC) does not allow them.")),
			timeseries("Failed host calls/s by code", []Target{q(sumBy("module, code", rate("wre_host_calls_total", byMod+`, code!~"2..|403"`)), "{{module}} {{code}}")}, width(12), unit("ops"),
				desc("404 and 409 are often part of normal reconciling; 5xx are not.")),
		}},
	)
}
