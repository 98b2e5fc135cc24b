package guest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/go-logr/logr"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// NewLogger returns a logger whose lines go to the host through Caller.Log.
// V(0) is info, V(1) debug, V(2) and above trace. A line is the message
// followed by key=value pairs (logfmt), values quoted when they need it.
func NewLogger(c Caller) logr.Logger { return logr.New(&sink{caller: c}) }

type sink struct {
	caller Caller
	name   string
	values []any
}

var _ logr.LogSink = (*sink)(nil)

func (s *sink) Init(logr.RuntimeInfo) {}

// Enabled is true for every level: the host filters by level.
func (s *sink) Enabled(int) bool { return true }

func (s *sink) Info(level int, msg string, kv ...any) {
	l := abi.LevelInfo
	switch {
	case level >= 2:
		l = abi.LevelTrace
	case level == 1:
		l = abi.LevelDebug
	}
	s.caller.Log(l, s.format(msg, nil, kv))
}

func (s *sink) Error(err error, msg string, kv ...any) {
	s.caller.Log(abi.LevelError, s.format(msg, err, kv))
}

func (s *sink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any{}, s.values...), kv...)
	return &c
}

func (s *sink) WithName(name string) logr.LogSink {
	c := *s
	if c.name != "" {
		name = c.name + "/" + name
	}
	c.name = name
	return &c
}

func (s *sink) format(msg string, err error, kv []any) []byte {
	var b strings.Builder
	if s.name != "" {
		b.WriteString(s.name)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	if err != nil {
		writePair(&b, "error", err.Error())
	}
	for _, list := range [][]any{s.values, kv} {
		for i := 0; i < len(list); i += 2 {
			var v any = "(MISSING)"
			if i+1 < len(list) {
				v = list[i+1]
			}
			writePair(&b, fmt.Sprint(list[i]), v)
		}
	}
	return []byte(b.String())
}

func writePair(b *strings.Builder, k string, v any) {
	s := fmt.Sprint(v)
	if s == "" || strings.ContainsAny(s, " =\"\n\t") {
		s = strconv.Quote(s)
	}
	b.WriteByte(' ')
	b.WriteString(k)
	b.WriteByte('=')
	b.WriteString(s)
}
