package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/secure"

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
		{"cert dir without --metrics-secure", []string{"run", "--metrics-cert-dir", "/certs"}, exitUsage, "--metrics-cert-dir needs --metrics-secure"},
		{"positional argument", []string{"run", "extra"}, exitUsage, `unexpected arguments ["extra"]`},
		{"missing kubeconfig", []string{"run", "--kubeconfig", filepath.Join(t.TempDir(), "none")}, exitError, "load kubeconfig"},
		{"unreachable API server", []string{"run", "--kubeconfig", unreachable, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"},
			exitError, "reach API server https://127.0.0.1:1"},
		{"module memory ceiling above 4Gi", []string{"run", "--kubeconfig", cp.KubeconfigPath(), "--module-namespace", "default", "--max-module-memory", "8Gi",
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, exitError, "--max-module-memory 8Gi: must be positive and at most 4Gi"},
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

// TestLoadConfigOrder checks kubectl's order: --kubeconfig, then $KUBECONFIG,
// then ~/.kube/config; with none of them (and not in a pod) a clear error.
func TestLoadConfigOrder(t *testing.T) {
	dir := t.TempDir()
	kubeconfigFor := func(name, server string) string {
		cfg := cp.Config()
		cfg.Host = server
		path := filepath.Join(dir, name)
		require.NoError(t, cp.WriteKubeconfig(path, cfg))
		return path
	}
	explicit := kubeconfigFor("explicit", "https://explicit.example:6443")
	env := kubeconfigFor("env", "https://env.example:6443")
	// client-go resolves ~/.kube/config once, at init.
	defaultHomeFile := clientcmd.RecommendedHomeFile
	t.Cleanup(func() { clientcmd.RecommendedHomeFile = defaultHomeFile })
	clientcmd.RecommendedHomeFile = kubeconfigFor("home", "https://home.example:6443")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")

	t.Setenv("KUBECONFIG", env)
	cfg, err := loadConfig(explicit)
	require.NoError(t, err)
	assert.Equal(t, "https://explicit.example:6443", cfg.Host, "--kubeconfig wins")
	cfg, err = loadConfig("")
	require.NoError(t, err)
	assert.Equal(t, "https://env.example:6443", cfg.Host, "then $KUBECONFIG")
	t.Setenv("KUBECONFIG", "")
	cfg, err = loadConfig("")
	require.NoError(t, err)
	assert.Equal(t, "https://home.example:6443", cfg.Host, "then ~/.kube/config")

	clientcmd.RecommendedHomeFile = filepath.Join(dir, "no-home-config")
	_, err = loadConfig("")
	assert.ErrorContains(t, err, "load kubeconfig", "neither in a cluster nor a kubeconfig")
	_, err = loadConfig(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "missing", "an explicit path that does not exist is an error, not a fallback")
}

// TestRunFlagsReachTheManager checks that every engine flag ends up in the
// manager's options, and the defaults of those not given.
func TestRunFlagsReachTheManager(t *testing.T) {
	parse := func(args ...string) manager.Options {
		var f runFlags
		fs := flag.NewFlagSet("wre run", flag.ContinueOnError)
		f.register(fs)
		require.NoError(t, fs.Parse(args))
		require.NoError(t, f.validate(fs.Args()))
		return f.managerOptions(cp.Config(), logr.Discard())
	}
	o := parse("--kube-api-qps", "7", "--kube-api-burst", "9", "--leader-elect", "--leader-election-id", "l",
		"--leader-election-namespace", "ns", "--lease-duration", "20s", "--renew-deadline", "12s", "--retry-period", "3s",
		"--metrics-bind-address", ":1", "--health-probe-bind-address", ":2", "--graceful-shutdown-timeout", "5s",
		"--metrics-secure", "--metrics-cert-dir", "/certs")
	assert.Equal(t, float32(7), o.QPS)
	assert.Equal(t, 9, o.Burst)
	assert.Equal(t, manager.LeaderElection{Enabled: true, LeaseName: "l", Namespace: "ns",
		LeaseDuration: 20 * time.Second, RenewDeadline: 12 * time.Second, RetryPeriod: 3 * time.Second}, o.LeaderElection)
	assert.Equal(t, ":1", o.MetricsBindAddress)
	assert.Equal(t, ":2", o.HealthProbeBindAddress)
	assert.Equal(t, &secure.Options{CertDir: "/certs"}, o.SecureMetrics)
	assert.Equal(t, 5*time.Second, o.GracefulShutdownTimeout)

	o = parse()
	assert.Equal(t, float32(manager.DefaultQPS), o.QPS)
	assert.Equal(t, manager.DefaultBurst, o.Burst)
	assert.False(t, o.LeaderElection.Enabled)
	assert.Equal(t, manager.DefaultLeaseName, o.LeaderElection.LeaseName)
	assert.Nil(t, o.SecureMetrics, "plain HTTP metrics without --metrics-secure")
	mgr, err := manager.New(o)
	require.NoError(t, err)
	assert.Equal(t, float32(50), mgr.Config().QPS, "the manager's client is not throttled at client-go's 5 QPS")
	assert.Equal(t, 100, mgr.Config().Burst)
}

// TestVerbosityReachesKlog checks that --v also opens client-go's klog.V(n)
// lines, which klog filters before they reach the engine's logger.
func TestVerbosityReachesKlog(t *testing.T) {
	t.Cleanup(func() { setKlogVerbosity(0) })
	setKlogVerbosity(0)
	assert.False(t, bool(klog.V(4).Enabled()))
	setKlogVerbosity(4)
	assert.True(t, bool(klog.V(4).Enabled()))
	assert.False(t, bool(klog.V(5).Enabled()))
}
