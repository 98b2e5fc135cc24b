package health_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/engine/health"
)

func TestProbes(t *testing.T) {
	p := health.New()
	p.AddHealthz("ping", health.Ping)
	p.AddReadyz("informers", func(*http.Request) error { return errors.New("widgets not synced") })
	p.AddReadyz("leader", health.Ping)
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()

	tests := []struct {
		path     string
		code     int
		contains []string
		absent   []string
	}{
		{"/healthz", 200, []string{"ok"}, []string{"[+]ping"}},
		{"/healthz?verbose", 200, []string{"[+]ping ok", "ok"}, nil},
		{"/healthz/ping", 200, []string{"ok"}, nil},
		{"/healthz/nope", 404, []string{`no check named "nope"`}, nil},
		{"/readyz", 500, []string{"[-]informers failed: widgets not synced", "check failed"}, []string{"[+]leader"}},
		{"/readyz?verbose", 500, []string{"[-]informers failed", "[+]leader ok"}, nil},
		{"/readyz/leader", 200, []string{"ok"}, []string{"informers"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.code, resp.StatusCode)
			for _, s := range tt.contains {
				assert.Contains(t, string(body), s)
			}
			for _, s := range tt.absent {
				assert.NotContains(t, string(body), s)
			}
		})
	}

	t.Run("removed check no longer fails the probe", func(t *testing.T) {
		p.RemoveReadyz("informers")
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		assert.Equal(t, http.StatusOK, rec.Code)
	})
}

func TestNoChecksPass(t *testing.T) {
	rec := httptest.NewRecorder()
	health.New().Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ok\n", rec.Body.String())
}
