package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/util/cert"

	"github.com/wre-dev/wre/test/controlplane"
)

// TestStatusOfASecuredEngine runs `wre run --metrics-secure` with a mounted
// certificate and reads it with `wre status`: with the kubeconfig's token
// (the control plane's admin) and the CA, it prints the table; a bad token,
// an unknown certificate or credentials over plain HTTP are refused.
func TestStatusOfASecuredEngine(t *testing.T) {
	certDir := t.TempDir()
	crt, key, err := cert.GenerateSelfSignedCertKey("localhost", nil, nil) // a leaf and the CA that signed it
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(certDir, "tls.crt"), crt, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(certDir, "tls.key"), key, 0o600))
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"run", "--kubeconfig", cp.KubeconfigPath(), "--log-format", "json", "--v", "1",
			"--module-namespace", controlplane.Namespace(t, cp), "--cache-dir", t.TempDir(),
			"--metrics-bind-address", addr, "--health-probe-bind-address", "127.0.0.1:0",
			"--metrics-secure", "--metrics-cert-dir", certDir}, &bytes.Buffer{}, &stderr)
	}()
	defer func() {
		cancel()
		assert.Equal(t, exitOK, <-done)
	}()
	newLogWatcher(&stderr).waitFor(t, "Watching module ConfigMaps")

	url := "https://localhost:" + strings.Split(addr, ":")[1]
	code, out, errOut := wre(t, "status", "--url", url, "--kubeconfig", cp.KubeconfigPath(), "--certificate-authority", filepath.Join(certDir, "tls.crt"))
	require.Equal(t, exitOK, code, errOut)
	assert.Regexp(t, `^NAME\s+PHASE`, out)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"bad token", []string{"--url", url, "--insecure-skip-tls-verify", "--token", "not-a-token"}, exitError, "401 Unauthorized"},
		{"unknown certificate", []string{"--url", url, "--kubeconfig", cp.KubeconfigPath()}, exitError, "certificate"},
		{"token over plain HTTP", []string{"--url", "http://" + addr, "--token", "t"}, exitUsage, "need an https:// --url"},
		{"plain HTTP to a TLS port", []string{"--url", "http://" + addr}, exitError, "400 Bad Request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := wre(t, append([]string{"status"}, tc.args...)...)
			assert.Equal(t, tc.code, code, errOut)
			assert.Contains(t, errOut, tc.stderr)
		})
	}
	assert.Contains(t, stderr.String(), "Denied an unauthenticated request")
	assert.NotContains(t, stderr.String(), "not-a-token")
}
