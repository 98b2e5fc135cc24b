// Package secure serves the engine's HTTP endpoints (/metrics, /modules,
// /debug/pprof/) safely inside a cluster: over TLS, and only to callers that
// the API server authenticates (TokenReview) and authorizes
// (SubjectAccessReview), as kube-rbac-proxy and controller-runtime's
// filters.WithAuthenticationAndAuthorization do. It is built from
// k8s.io/apiserver's request authenticators and token cache; the two reviews
// themselves go through client-go's typed client rather than
// k8s.io/apiserver's delegating webhooks, which would add 31 MB to the
// binary (review.go).
//
// Guarantees:
//   - A request without a bearer token, or with one the API server does not
//     accept (malformed, expired, revoked), or whose TokenReview fails (after
//     retries of transient errors), gets 401; a failed SubjectAccessReview 500;
//     an authenticated caller without the right gets 403. Neither reaches the
//     wrapped handler, so neither is served a byte of it.
//   - The right checked is the caller's: the lower-cased HTTP method as the
//     verb (get for GET) on the request path as a non-resource URL, the same
//     attributes the API server checks for its own /metrics. RBAC grants it
//     with nonResourceURLs (a trailing * covers a subtree: /debug/pprof/*).
//   - Answers are cached for a short time (TokenCacheTTL, AllowCacheTTL,
//     DenyCacheTTL), so a scrape costs at most one TokenReview and one
//     SubjectAccessReview per caller and period; a revoked right stops
//     working within that period.
//   - Denials are logged at V(1) with the path, the remote address and, for
//     403, the user; never with the token.
//   - The certificate comes from CertDir when given and is reloaded when its
//     files change (a rotated, mounted Secret), with no restart and no dropped
//     listener; otherwise a self-signed certificate is generated at start.
//     TLS 1.2 is the minimum and HTTP/2 is not offered.
package secure
