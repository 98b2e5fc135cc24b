// Package registry hot-loads wre modules: it watches the ConfigMaps labelled
// wre.dev/module in one namespace and loads, swaps and unloads the modules
// they ship (format: engine/modules, docs/modules.md) as controllers of the
// engine's manager.
//
// A change to a module's ConfigMaps is loaded after a short settle delay, up
// to Options.LoadWorkers modules at a time: assemble the parts, verify the
// digest, decompress within the size bound, check the manifest against the
// engine Policy (permissions and limit ceilings), compile (through the
// runtime's compilation cache), check the ABI, instantiate once, then start
// or swap.
//
// Guarantees:
//   - A slow or stuck module delays only itself: modules load in parallel
//     (LoadWorkers), one module never on two workers at once, and an
//     _initialize that never returns fails that module's load at its init
//     timeout, naming _initialize and the timeout.
//   - A broken version never replaces a working one: every failed step leaves
//     the running version serving, records a Warning LoadFailed event on the
//     module's part-0 ConfigMap naming the step and the problem, counts
//     wre_module_loads_total{result="error"} and shows in /modules.
//   - A new version with the same controller shape (resources, mappings,
//     predicates, concurrency, timeouts) is swapped into the running
//     controller: its work queue and informers survive, reconciles in flight
//     finish on the old version, and the old version is closed once they
//     have. The controller never runs a key on two workers, so no object is
//     reconciled by two versions at once.
//   - A new version of another shape replaces the controller; the registry
//     holds the informers the new controller needs while it does, so those the
//     two share are not re-listed.
//   - Deleting all of a module's ConfigMaps removes its controller (releasing
//     informers nobody else uses), closes its instances and deletes its
//     metric series.
//   - The wasm is held only while a version loads: the registry's informer
//     caches module ConfigMaps without it (modules.StripPayload) and a load
//     reads the parts from the API server; a running version keeps its
//     manifest and digest, not the bytes.
//   - The same set of ConfigMaps is never reported twice: a permanent failure
//     waits for the next change; a transient one (the API server, a missing
//     CRD) is retried with backoff.
package registry
