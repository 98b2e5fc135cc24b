package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/wre-dev/wre/engine/leader"
	"github.com/wre-dev/wre/engine/logging"
	"github.com/wre-dev/wre/engine/manager"
	"github.com/wre-dev/wre/engine/modules"
	"github.com/wre-dev/wre/engine/secure"
)

func init() {
	register(command{name: "run", summary: "run the engine (informers, controllers, leader election, probes, metrics)", run: runCommand})
}

// runFlags are the flags of `wre run`.
type runFlags struct {
	kubeconfig              string
	leaderElect             bool
	leaderElectionID        string
	leaderElectionNamespace string
	leaseDuration           time.Duration
	renewDeadline           time.Duration
	retryPeriod             time.Duration
	metricsAddr             string
	metricsSecure           bool
	metricsCertDir          string
	probeAddr               string
	qps                     float64
	burst                   int
	gracefulShutdown        time.Duration
	logFormat               string
	verbosity               int
}

// runExtension plugs a feature into `wre run` from a file of its own: flags
// adds its flags, setup adds its controllers (or anything else) to the manager
// before it starts. Work setup starts in the background must end when ctx is
// done and be counted in background: `wre run` waits for it after the manager
// has stopped, so nothing outlives the command. The native demo
// (native_demo.go) is one.
type runExtension struct {
	flags func(fs *flag.FlagSet)
	setup func(ctx context.Context, mgr *manager.Manager, background *sync.WaitGroup) error
}

var runExtensions []runExtension

// extendRun registers an extension; call it from init.
func extendRun(e runExtension) { runExtensions = append(runExtensions, e) }

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "path to a kubeconfig; else $KUBECONFIG, then ~/.kube/config, then the in-cluster config (kubectl's order)")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader among replicas through a Lease; only the leader runs workers")
	fs.StringVar(&f.leaderElectionID, "leader-election-id", manager.DefaultLeaseName, "name of the leader election Lease")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the pod's namespace)")
	fs.DurationVar(&f.leaseDuration, "lease-duration", leader.DefaultLeaseDuration, "how long standbys wait after the last renewal before taking over")
	fs.DurationVar(&f.renewDeadline, "renew-deadline", leader.DefaultRenewDeadline, "how long the leader retries renewing before giving up the lead")
	fs.DurationVar(&f.retryPeriod, "retry-period", leader.DefaultRetryPeriod, "interval between attempts to acquire or renew the lease")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", manager.DefaultMetricsBindAddress, `address of /metrics ("0" disables)`)
	fs.BoolVar(&f.metricsSecure, "metrics-secure", false, "serve the metrics address over HTTPS to callers the API server authenticates (TokenReview) and authorizes (SubjectAccessReview: get on the path, e.g. /metrics)")
	fs.StringVar(&f.metricsCertDir, "metrics-cert-dir", "", "directory with tls.crt and tls.key for --metrics-secure, reloaded when they change (default: a self-signed certificate)")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", manager.DefaultHealthProbeBindAddress, `address of /healthz and /readyz ("0" disables)`)
	fs.Float64Var(&f.qps, "kube-api-qps", manager.DefaultQPS, "client-side queries per second towards the API server")
	fs.IntVar(&f.burst, "kube-api-burst", manager.DefaultBurst, "client-side burst towards the API server")
	fs.DurationVar(&f.gracefulShutdown, "graceful-shutdown-timeout", manager.DefaultGracefulShutdownTimeout, "how long in-flight reconciles may finish at shutdown")
	fs.StringVar(&f.logFormat, "log-format", string(logging.FormatJSON), "log format: json or text")
	fs.IntVar(&f.verbosity, "v", 0, "log verbosity (higher is more verbose)")
	for _, e := range runExtensions {
		e.flags(fs)
	}
}

// validate catches what the flag package cannot; the manager checks the rest.
func (f *runFlags) validate(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	for name, d := range map[string]time.Duration{
		"lease-duration": f.leaseDuration, "renew-deadline": f.renewDeadline,
		"retry-period": f.retryPeriod, "graceful-shutdown-timeout": f.gracefulShutdown,
	} {
		if d <= 0 {
			return fmt.Errorf("--%s must be positive, got %s", name, d)
		}
	}
	if f.qps <= 0 || f.burst <= 0 {
		return fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive")
	}
	if f.metricsCertDir != "" && !f.metricsSecure {
		return fmt.Errorf("--metrics-cert-dir needs --metrics-secure")
	}
	return nil
}

func runCommand(ctx context.Context, args []string, _, stderr io.Writer) int {
	var f runFlags
	fs := flag.NewFlagSet("wre run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	log, err := logging.New(logging.Options{Format: logging.Format(f.logFormat), Verbosity: f.verbosity, Writer: stderr})
	if err == nil {
		err = f.validate(fs.Args())
	}
	if err != nil {
		fmt.Fprintf(stderr, "wre run: %v\n", err)
		return exitUsage
	}
	klog.SetLogger(log.WithName("client-go"))
	setKlogVerbosity(f.verbosity)
	if err := run(ctx, f, log); err != nil {
		log.Error(err, "wre run failed")
		return exitError
	}
	return exitOK
}

// run builds the manager from f and runs it until ctx is cancelled.
func run(ctx context.Context, f runFlags, log logr.Logger) error {
	cfg, err := loadConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	mgr, err := manager.New(f.managerOptions(cfg, log))
	if err != nil {
		return err
	}
	ctx = logr.NewContext(ctx, log) // extensions log with the engine's logger
	var background sync.WaitGroup
	defer background.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the background work, also when setup fails
	for _, e := range runExtensions {
		if err := e.setup(ctx, mgr, &background); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

// managerOptions maps the flags onto the manager's options.
func (f runFlags) managerOptions(cfg *rest.Config, log logr.Logger) manager.Options {
	var secureMetrics *secure.Options
	if f.metricsSecure {
		secureMetrics = &secure.Options{CertDir: f.metricsCertDir}
	}
	return manager.Options{
		Config: cfg, QPS: float32(f.qps), Burst: f.burst,
		LeaderElection: manager.LeaderElection{
			Enabled: f.leaderElect, LeaseName: f.leaderElectionID, Namespace: f.leaderElectionNamespace,
			LeaseDuration: f.leaseDuration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPeriod,
		},
		MetricsBindAddress: f.metricsAddr, SecureMetrics: secureMetrics, HealthProbeBindAddress: f.probeAddr,
		GracefulShutdownTimeout: f.gracefulShutdown,
		Logger:                  log,
		// The module registry reads the wasm itself; a module that caches
		// ConfigMaps must not make the engine hold the wasm a second time.
		CacheTransform: modules.StripPayload,
	}
}

// setKlogVerbosity gives klog the engine's verbosity. klog.SetLogger only
// routes klog's output; client-go's klog.V(n) lines are filtered by klog's own
// -v first, so without this `wre run --v 4` would not show them.
func setKlogVerbosity(v int) {
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	_ = fs.Set("v", strconv.Itoa(v)) // v ≥ 0: validated by logging.New
}

// loadConfig resolves the API server connection exactly as kubectl does
// (client-go's deferred loading rules): --kubeconfig, else the files in
// $KUBECONFIG, else ~/.kube/config, and the in-cluster service account only
// when none of those configures a server.
func loadConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config, in-cluster): %w", err)
	}
	return cfg, nil
}
