package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"

	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(enginetest.RunMain(m, &cp)) }

func TestDispatch(t *testing.T) {
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, cp.WriteKubeconfig(unreachable, &rest.Config{Host: "https://127.0.0.1:1"}))

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", nil, exitUsage, "Usage: wre <command>"},
		{"help", []string{"help"}, exitOK, "run "},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"run help", []string{"run", "-h"}, exitOK, "-leader-elect"},
		{"unknown flag", []string{"run", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{"bad log format", []string{"run", "--log-format", "xml"}, exitUsage, `unknown format "xml"`},
		{"bad duration", []string{"run", "--lease-duration", "-1s"}, exitUsage, "--lease-duration must be positive"},
		{"bad qps", []string{"run", "--kube-api-qps", "0"}, exitUsage, "--kube-api-qps and --kube-api-burst must be positive"},
		{"positional argument", []string{"run", "extra"}, exitUsage, `unexpected arguments ["extra"]`},
		{"missing kubeconfig", []string{"run", "--kubeconfig", filepath.Join(t.TempDir(), "none")}, exitError, "load kubeconfig"},
		{"unreachable API server", []string{"run", "--kubeconfig", unreachable, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"},
			exitError, "reach API server https://127.0.0.1:1"},
		{"election outside a cluster without namespace", []string{"run", "--kubeconfig", cp.KubeconfigPath(), "--leader-elect"},
			exitError, "LeaderElection.Namespace is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(t.Context(), tt.args, &stdout, &stderr)
			assert.Equal(t, tt.code, code, stderr.String())
			assert.Contains(t, stderr.String(), tt.stderr)
		})
	}
}

// TestRunUntilCancelled runs the engine in-process with the native demo and
// checks that cancellation (what SIGTERM does in main) exits 0.
func TestRunUntilCancelled(t *testing.T) {
	require.NoError(t, enginetest.InstallWidgetCRD(t.Context(), cp.Config()))
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"run", "--kubeconfig", cp.KubeconfigPath(), "--native-demo", "--log-format", "text",
			"--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"}, &bytes.Buffer{}, &stderr)
	}()
	l := newLogWatcher(&stderr)
	l.waitFor(t, "Starting workers")
	cancel()
	assert.Equal(t, exitOK, <-done, stderr.String())
	assert.Contains(t, stderr.String(), "Manager stopped")
}

func TestLoadConfigInClusterFallback(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := loadConfig("")
	assert.ErrorContains(t, err, "load kubeconfig", "neither in a cluster nor a kubeconfig")
	t.Setenv("KUBECONFIG", cp.KubeconfigPath())
	cfg, err := loadConfig("")
	require.NoError(t, err)
	assert.Equal(t, cp.Server(), cfg.Host)
}
