package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
)

// Format selects how log lines are written.
type Format string

const (
	// FormatJSON writes one JSON object per line.
	FormatJSON Format = "json"
	// FormatText writes human-readable key=value lines.
	FormatText Format = "text"
)

// Options configure New.
type Options struct {
	// Format of the lines. Defaults to FormatJSON.
	Format Format
	// Verbosity is the highest logr V-level written. Defaults to 0; must not be
	// negative.
	Verbosity int
	// Writer receives the lines. Defaults to os.Stderr.
	Writer io.Writer
}

// New returns a logger writing in the configured format and verbosity.
func New(opts Options) (logr.Logger, error) {
	if opts.Format == "" {
		opts.Format = FormatJSON
	}
	if opts.Writer == nil {
		opts.Writer = os.Stderr
	}
	if opts.Verbosity < 0 {
		return logr.Discard(), fmt.Errorf("logging: verbosity %d must not be negative", opts.Verbosity)
	}
	// logr's V(n) maps onto slog level -n, so level -v admits V(0)…V(v).
	ho := &slog.HandlerOptions{Level: slog.Level(-opts.Verbosity)}
	var h slog.Handler
	switch opts.Format {
	case FormatJSON:
		h = slog.NewJSONHandler(opts.Writer, ho)
	case FormatText:
		h = slog.NewTextHandler(opts.Writer, ho)
	default:
		return logr.Discard(), fmt.Errorf("logging: unknown format %q (want %q or %q)", opts.Format, FormatJSON, FormatText)
	}
	return logr.FromSlogHandler(h), nil
}

// Warn logs msg at slog's WARN level, for conditions an operator should see
// but that the engine handles itself (logr has no warning level). On a logger
// from New the line has level "WARN" and the logger's values (not its name);
// on other loggers it is an Info line.
func Warn(logger logr.Logger, msg string, keysAndValues ...any) {
	u, ok := logger.GetSink().(logr.Underlier)
	if !ok {
		logger.Info(msg, keysAndValues...)
		return
	}
	h, ctx := u.GetUnderlying(), context.Background()
	if !h.Enabled(ctx, slog.LevelWarn) {
		return
	}
	rec := slog.NewRecord(time.Now(), slog.LevelWarn, msg, 0)
	rec.Add(keysAndValues...)
	_ = h.Handle(ctx, rec)
}
