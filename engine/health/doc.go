// Package health serves the engine's liveness (/healthz) and readiness (/readyz)
// probes.
//
// Guarantees:
//   - A probe answers 200 "ok" only when every check registered for it passes,
//     and 500 otherwise; the body lists each failing check and its reason, and
//     with ?verbose every check, as the Kubernetes API server does.
//   - /healthz/<name> and /readyz/<name> run one check alone.
//   - Checks may be added and removed while the probes are served; every request
//     sees a consistent set of checks.
package health
