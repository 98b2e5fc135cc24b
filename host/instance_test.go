package host

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLineWriterCutsLongLines(t *testing.T) {
	long := strings.Repeat("x", maxLogLine+100)
	cases := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"short lines", []string{"a\nb", "c\n"}, []string{"a", "bc"}},
		{"long line in one write", []string{long + "\nnext\n"}, []string{long[:maxLogLine] + cutMarker, "next"}},
		{"long line over many writes", []string{long[:maxLogLine-1], long[maxLogLine-1:], long, "\nnext\n"},
			[]string{long[:maxLogLine] + cutMarker, "next"}},
		{"long line without newline is cut at flush", []string{long}, []string{long[:maxLogLine] + cutMarker}},
		{"line of exactly the maximum is not cut", []string{long[:maxLogLine] + "\n"}, []string{long[:maxLogLine]}},
		{"cut inside a rune stays valid UTF-8", []string{long[:maxLogLine-1] + "é\n"}, []string{long[:maxLogLine-1] + cutMarker}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			w := &lineWriter{emit: func(line string) { got = append(got, line) }}
			for _, s := range c.writes {
				n, err := w.Write([]byte(s))
				assert.NoError(t, err)
				assert.Equal(t, len(s), n)
			}
			w.Flush()
			assert.Equal(t, len(c.want), len(got), "lines")
			for i := range min(len(c.want), len(got)) {
				assert.True(t, got[i] == c.want[i], "line %d: %d bytes %q…, want %d bytes %q…", i, len(got[i]), head(got[i]), len(c.want[i]), head(c.want[i]))
			}
		})
	}
}

func head(s string) string { return s[:min(len(s), 20)] }

func TestBoundCutsWithMarker(t *testing.T) {
	assert.Equal(t, "short", bound("short", 100))
	got := bound(strings.Repeat("é", 100), 51)
	assert.LessOrEqual(t, len(got), 51)
	assert.True(t, strings.HasSuffix(got, " …[cut]"))
	assert.True(t, strings.HasPrefix(got, "éé"))
}
