package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/wre-dev/wre/engine/health"
)

type runaways int

func (n runaways) Runaways() int { return int(n) }

// TestRunawayGuestsFailLiveness: with --trusted-guests, /healthz fails while
// guest code runs past its reconcile, so that the kubelet restarts the pod.
func TestRunawayGuestsFailLiveness(t *testing.T) {
	for _, c := range []struct {
		runaways runaways
		code     int
		body     string
	}{
		{0, http.StatusOK, "ok"},
		{2, http.StatusInternalServerError, "[-]guests failed: 2 module instance(s) still run guest code after their reconcile timed out (--trusted-guests)"},
	} {
		probes := health.New()
		probes.AddHealthz("guests", runawayCheck(c.runaways))
		rec := httptest.NewRecorder()
		probes.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		assert.Equal(t, c.code, rec.Code)
		assert.Contains(t, rec.Body.String(), c.body)
	}
}
