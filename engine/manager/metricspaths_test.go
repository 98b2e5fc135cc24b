package manager_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandleMetricsPath(t *testing.T) {
	m := newManager(t, nil)
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "modules") })
	require.NoError(t, m.HandleMetricsPath("/modules", hello))
	assert.ErrorContains(t, m.HandleMetricsPath("/modules", hello), "path already served")
	assert.ErrorContains(t, m.HandleMetricsPath("/metrics", hello), "path already served")

	r := start(t, m)
	code, body := get(t, "http://"+r.MetricsAddress()+"/modules")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "modules", body)
	code, _ = get(t, "http://"+r.MetricsAddress()+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.ErrorContains(t, m.HandleMetricsPath("/late", hello), "the manager has started")
}
