package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/engine/logging"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name      string
		opts      logging.Options
		wantLines int
		check     func(t *testing.T, line string)
	}{
		{
			name:      "json default verbosity drops V(1)",
			opts:      logging.Options{},
			wantLines: 1,
			check: func(t *testing.T, line string) {
				var m map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &m))
				assert.Equal(t, "info", m["msg"])
				assert.Equal(t, "c1", m["controller"])
				assert.Contains(t, m, "time")
			},
		},
		{
			name:      "text with verbosity 2 writes V(1) and V(2)",
			opts:      logging.Options{Format: logging.FormatText, Verbosity: 2},
			wantLines: 3,
			check: func(t *testing.T, line string) {
				assert.Contains(t, line, "controller=c1")
				assert.Contains(t, line, "time=")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.opts.Writer = &buf
			log, err := logging.New(tt.opts)
			require.NoError(t, err)
			log = log.WithValues("controller", "c1")
			log.Info("info")
			log.V(1).Info("debug")
			log.V(2).Info("trace")
			log.V(3).Info("too verbose")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			require.Len(t, lines, tt.wantLines)
			for _, l := range lines {
				tt.check(t, l)
			}
		})
	}
}

func TestNewInvalid(t *testing.T) {
	tests := []struct {
		name string
		opts logging.Options
		want string
	}{
		{"unknown format", logging.Options{Format: "xml"}, `unknown format "xml"`},
		{"negative verbosity", logging.Options{Verbosity: -1}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := logging.New(tt.opts)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestWarn(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(logging.Options{Writer: &buf})
	require.NoError(t, err)
	logging.Warn(log.WithName("informers").WithValues("resource", "configmaps.v1"), "watch failed", "error", "refused")
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	assert.Equal(t, "WARN", m["level"])
	assert.Equal(t, "watch failed", m["msg"])
	assert.Equal(t, "configmaps.v1", m["resource"])
	assert.Equal(t, "refused", m["error"])

	var lines []string
	other := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	logging.Warn(other, "watch failed", "error", "refused")
	require.Len(t, lines, 1, "a logger not from New gets an Info line")
	assert.Contains(t, lines[0], `"msg"="watch failed"`)
}
