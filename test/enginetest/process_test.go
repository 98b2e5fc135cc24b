package enginetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogWatcher(t *testing.T) {
	var log SyncBuffer
	l := NewLogWatcher(&log)
	_, ok := l.Find("Serving probes")
	assert.False(t, ok)

	_, _ = log.Write([]byte(`{"time":"2026-01-02T03:04:05.000000006Z","level":"INFO","msg":"Serving metrics","address":"127.0.0.1:1"}` + "\n"))
	_, _ = log.Write([]byte(`{"time":"2026-01-02T03:04:06Z","level":"INFO","msg":"Serving probes","address":"127.0.0.1:2"}` + "\n"))
	_, _ = log.Write([]byte(`time=2026-01-02T03:04:07Z level=INFO msg="Starting workers" controller=x` + "\n"))
	line, ok := l.Find("Serving probes")
	require.True(t, ok)
	assert.Equal(t, "127.0.0.1:2", line.Address)
	assert.Equal(t, time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), line.Time)
	line, ok = l.Find("Serving")
	require.True(t, ok, "a prefix finds the first line")
	assert.Equal(t, "127.0.0.1:1", line.Address)
	line, ok = l.Find("Starting workers")
	require.True(t, ok, "text format")
	assert.Equal(t, "Starting workers", line.Msg)

	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = log.Write([]byte(`{"msg":"Workers stopped"}` + "\n"))
	}()
	line, err := l.WaitFor(t.Context(), "Workers stopped")
	require.NoError(t, err)
	assert.Equal(t, "Workers stopped", line.Msg)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err = l.WaitFor(ctx, "Manager stopped")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, strings.HasSuffix(err.Error(), `{"msg":"Workers stopped"}`), "the error quotes the end of the log: %v", err)
}
