package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPprof serves the heap profile next to /metrics with --pprof, and
// nothing under /debug/pprof/ without it.
func TestPprof(t *testing.T) {
	for _, on := range []bool{true, false} {
		ctx, cancel := context.WithCancel(t.Context())
		addr := freeAddr(t)
		args := []string{"run", "--kubeconfig", cp.KubeconfigPath(), "--log-format", "text",
			"--metrics-bind-address", addr, "--health-probe-bind-address", "127.0.0.1:0"}
		if on {
			args = append(args, "--pprof")
		}
		var stderr syncBuffer
		done := make(chan int, 1)
		go func() { done <- dispatch(ctx, args, &bytes.Buffer{}, &stderr) }()
		get := func(path string) (int, string) {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				return 0, err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		require.Eventually(t, func() bool { code, _ := get("/metrics"); return code == http.StatusOK }, time.Minute, 50*time.Millisecond, stderr.String())
		code, body := get("/debug/pprof/heap?debug=1")
		if on {
			assert.Equal(t, http.StatusOK, code)
			assert.Contains(t, body, "heap profile:")
		} else {
			assert.Equal(t, http.StatusNotFound, code, "profiles are off by default")
		}
		cancel()
		assert.Equal(t, exitOK, <-done, stderr.String())
	}
}
