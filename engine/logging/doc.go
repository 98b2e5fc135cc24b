// Package logging builds the engine's logr.Logger on top of log/slog.
//
// Guarantees:
//   - FormatJSON writes one JSON object per line (for production log pipelines);
//     FormatText writes slog's key=value text (for people).
//   - Verbosity v enables logger.V(0) … logger.V(v); higher levels are dropped
//     before any formatting work.
//   - Every line carries a timestamp, a level and the logger's name and values,
//     so the values that the engine attaches (controller, reconcileID, …) appear
//     in every line written under them.
package logging
