// Package modulestatus publishes the state of every module the engine runs as
// a WreModule object (wremodules.wre.dev/v1alpha1, deploy/base/wremodule-crd.yaml),
// so that `kubectl get wremodules` shows each module's phase, serving version,
// ABI, instances, reconciles, errors and last load error.
//
// Where it sits: beside the module registry (engine/registry), which loads
// modules from their ConfigMaps and reports their state; the publisher reads
// that report and writes it to the API server. Data flows one way: the
// ConfigMaps stay the source of truth, and nothing reads WreModules back.
package modulestatus
