package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/engine/registry"
)

func TestParallel(t *testing.T) {
	var seen [100]atomic.Int32
	require.NoError(t, parallel(t.Context(), len(seen), 7, func(_ context.Context, i int) error {
		seen[i].Add(1)
		return nil
	}))
	for i := range seen {
		assert.Equal(t, int32(1), seen[i].Load(), "index %d runs exactly once", i)
	}

	boom := errors.New("boom")
	var calls atomic.Int32
	err := parallel(t.Context(), 10000, 4, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return ctx.Err()
	})
	assert.ErrorIs(t, err, boom)
	assert.Less(t, calls.Load(), int32(10000), "no new calls start after an error")
}

// fakeEngine serves /metrics and /modules like an engine's metrics server.
func fakeEngine(t *testing.T, statuses func() []registry.Status) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			_, _ = w.Write([]byte(`# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="a",result="success"} 7
controller_runtime_reconcile_total{controller="a",result="error"} 2
controller_runtime_reconcile_total{controller="b",result="success"} 100
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.048576e+06
`))
		case "/modules":
			_ = json.NewEncoder(w).Encode(statuses())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestMetricSum(t *testing.T) {
	addr := fakeEngine(t, nil)
	for _, tt := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
		err    string
	}{
		{"one controller, every result", "controller_runtime_reconcile_total", map[string]string{"controller": "a"}, 9, ""},
		{"two labels", "controller_runtime_reconcile_total", map[string]string{"controller": "a", "result": "error"}, 2, ""},
		{"all series", "controller_runtime_reconcile_total", nil, 109, ""},
		{"gauge", "go_memstats_heap_inuse_bytes", nil, 1 << 20, ""},
		{"no match", "controller_runtime_reconcile_total", map[string]string{"controller": "c"}, 0, ""},
		{"missing", "nope_total", nil, 0, "no metric nope_total"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MetricSum(t.Context(), addr, tt.metric, tt.labels)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tt.want, got, 1e-9)
		})
	}
}

func TestWaitModules(t *testing.T) {
	var polls atomic.Int32
	addr := fakeEngine(t, func() []registry.Status {
		if polls.Add(1) < 3 {
			return []registry.Status{{Name: "a", State: registry.StateLoaded}}
		}
		return []registry.Status{{Name: "a", State: registry.StateLoaded}, {Name: "b", State: registry.StateLoaded, Instances: 2}}
	})
	st, err := WaitModules(t.Context(), addr, 2)
	require.NoError(t, err)
	assert.Len(t, st, 2)
	n, err := instances(t.Context(), addr)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	failed := fakeEngine(t, func() []registry.Status {
		return []registry.Status{{Name: "a", State: registry.StateLoadFailed, LastError: "CompileFailed: boom"}}
	})
	_, err = WaitModules(t.Context(), failed, 1)
	assert.ErrorContains(t, err, "module a: CompileFailed: boom")

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = WaitModules(ctx, addr, 3)
	assert.ErrorContains(t, err, "wait for 3 loaded modules")
}

func TestPositiveEnv(t *testing.T) {
	t.Setenv("WRE_BENCH_TEST_N", "")
	n, err := positiveEnv("WRE_BENCH_TEST_N", 5)
	require.NoError(t, err)
	assert.Equal(t, 5, n, "empty: the default")
	t.Setenv("WRE_BENCH_TEST_N", "12")
	n, err = positiveEnv("WRE_BENCH_TEST_N", 5)
	require.NoError(t, err)
	assert.Equal(t, 12, n)
	for _, bad := range []string{"0", "-1", "x"} {
		t.Setenv("WRE_BENCH_TEST_N", bad)
		_, err = positiveEnv("WRE_BENCH_TEST_N", 5)
		assert.ErrorContains(t, err, "want a positive number", bad)
	}
}
