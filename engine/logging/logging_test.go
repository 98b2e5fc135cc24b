package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

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
