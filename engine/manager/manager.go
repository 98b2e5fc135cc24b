package manager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/wre-dev/wre/engine/health"
	"github.com/wre-dev/wre/engine/informers"
	"github.com/wre-dev/wre/engine/leader"
	"github.com/wre-dev/wre/engine/metrics"
	"github.com/wre-dev/wre/engine/secure"
)

// Defaults of Options.
const (
	// DefaultQPS and DefaultBurst suit a host of many controllers sharing one
	// client; client-go's own 5/10 would throttle them.
	DefaultQPS                     = 50
	DefaultBurst                   = 100
	DefaultMetricsBindAddress      = ":8080"
	DefaultHealthProbeBindAddress  = ":8081"
	DefaultGracefulShutdownTimeout = 30 * time.Second
	DefaultLeaseName               = "wre-leader"
	// DisabledAddress turns off a server when given as its bind address.
	DisabledAddress = "0"
)

// inClusterNamespaceFile holds the namespace of the pod the engine runs in.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Options configure a Manager.
type Options struct {
	// Config reaches the API server. Required. The manager works on a copy.
	Config *rest.Config
	// QPS is the client-side rate limit towards the API server. Defaults to
	// DefaultQPS (50).
	QPS float32
	// Burst is the client-side burst towards the API server. Defaults to
	// DefaultBurst (100).
	Burst int
	// LeaderElection configures the election among replicas. Disabled by
	// default: the manager leads alone.
	LeaderElection LeaderElection
	// MetricsBindAddress is where /metrics is served. Defaults to ":8080";
	// DisabledAddress turns it off.
	MetricsBindAddress string
	// SecureMetrics, when set, serves the metrics address over TLS to callers
	// the API server authenticates and authorizes (package secure): every
	// path on it (/metrics, /modules, /debug/pprof/) needs the right to get
	// that non-resource URL. Its Config defaults to the manager's and its
	// Logger to the manager's. Defaults to nil: plain HTTP, no
	// authentication, for local runs.
	SecureMetrics *secure.Options
	// HealthProbeBindAddress is where /healthz and /readyz are served. Defaults
	// to ":8081"; DisabledAddress turns it off.
	HealthProbeBindAddress string
	// GracefulShutdownTimeout bounds how long in-flight reconciles may run after
	// shutdown began. Defaults to DefaultGracefulShutdownTimeout (30 s).
	GracefulShutdownTimeout time.Duration
	// Logger receives the engine's logs. Defaults to logr.Discard().
	Logger logr.Logger
	// Metrics is where every engine metric is registered. Defaults to a new
	// metrics.Registry.
	Metrics *metrics.Registry
	// Clock is the time source of the controllers. Defaults to clock.RealClock{}.
	Clock clock.WithTicker
	// CacheTransform prepares every object before the shared informers cache
	// it (informers.Options.Transform). `wre run` passes
	// modules.StripPayload, so the cache holds no second copy of the
	// modules' wasm. Defaults to nil: objects are cached as served.
	CacheTransform cache.TransformFunc
}

// LeaderElection configures the Lease-based election; see package leader.
type LeaderElection struct {
	// Enabled makes replicas elect one leader; only the leader runs workers.
	// Defaults to false.
	Enabled bool
	// LeaseName names the Lease, and labels leader_election_master_status
	// (also without election). Defaults to DefaultLeaseName ("wre-leader").
	LeaseName string
	// Namespace of the Lease. Defaults to the namespace the pod runs in; required
	// outside a cluster.
	Namespace string
	// Identity of this replica. Defaults to the host name plus a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod default to 15 s, 10 s and
	// 2 s (leader.Default…).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// KeepLeaseOnShutdown keeps the lease at shutdown. Defaults to false: the
	// lease is released so a standby takes over at once, unless reconciles
	// were still running at the end of the shutdown; then it is always kept.
	KeepLeaseOnShutdown bool
}

// Manager runs controllers; see the package documentation.
type Manager struct {
	opts      Options
	cfg       *rest.Config
	log       logr.Logger
	metrics   *metrics.Registry
	informers *informers.Registry
	probes    *health.Probes
	elector   *leader.Elector
	secure    *secure.Server // nil: plain HTTP metrics

	mu          sync.Mutex
	controllers map[string]*managed
	state       runState
	leadCtx     context.Context // set while leading: workers run under it
	workers     sync.WaitGroup  // one per started controller
	addrs       map[string]string
	// metricsPaths are served next to /metrics (HandleMetricsPath).
	metricsPaths map[string]http.Handler
	started      chan struct{}
}

type runState int

const (
	stateNew runState = iota
	stateRunning
	stateStopping
)

// New validates opts, fills their defaults and builds the clients; it does not
// contact the API server.
func New(opts Options) (*Manager, error) {
	if opts.Config == nil {
		return nil, errors.New("new manager: Options.Config is required")
	}
	if opts.QPS < 0 || opts.Burst < 0 || opts.GracefulShutdownTimeout < 0 {
		return nil, errors.New("new manager: QPS, Burst and GracefulShutdownTimeout must not be negative")
	}
	if opts.QPS == 0 {
		opts.QPS = DefaultQPS
	}
	if opts.Burst == 0 {
		opts.Burst = DefaultBurst
	}
	if opts.MetricsBindAddress == "" {
		opts.MetricsBindAddress = DefaultMetricsBindAddress
	}
	if opts.HealthProbeBindAddress == "" {
		opts.HealthProbeBindAddress = DefaultHealthProbeBindAddress
	}
	if opts.GracefulShutdownTimeout == 0 {
		opts.GracefulShutdownTimeout = DefaultGracefulShutdownTimeout
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	cfg := rest.CopyConfig(opts.Config)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.UserAgent == "" {
		cfg.UserAgent = "wre"
	}
	m := &Manager{
		opts:        opts,
		cfg:         cfg,
		log:         opts.Logger,
		metrics:     opts.Metrics,
		probes:      health.New(),
		controllers: map[string]*managed{},
		addrs:       map[string]string{},
		started:     make(chan struct{}),
	}
	var err error
	m.informers, err = informers.NewRegistry(informers.Options{Config: cfg, Logger: opts.Logger.WithName("informers"), Transform: opts.CacheTransform})
	if err != nil {
		return nil, fmt.Errorf("new manager: %w", err)
	}
	// wre_informer_references and wre_informer_synced, read at scrape time.
	if err := m.metrics.Registerer().Register(m.informers.Collector()); err != nil {
		return nil, fmt.Errorf("new manager: register informer metrics: %w", err)
	}
	if m.opts.LeaderElection.LeaseName == "" {
		// Also without election: it names leader_election_master_status.
		m.opts.LeaderElection.LeaseName = DefaultLeaseName
	}
	if le := m.opts.LeaderElection; le.Enabled {
		if le.LeaseDuration == 0 {
			le.LeaseDuration = leader.DefaultLeaseDuration // for the logs
		}
		if le.Namespace == "" {
			ns, err := os.ReadFile(inClusterNamespaceFile)
			if err != nil {
				return nil, errors.New("new manager: LeaderElection.Namespace is required when not running in a cluster")
			}
			le.Namespace = strings.TrimSpace(string(ns))
		}
		m.elector, err = leader.New(leader.Options{
			Config: cfg, LeaseName: le.LeaseName, Namespace: le.Namespace, Identity: le.Identity,
			LeaseDuration: le.LeaseDuration, RenewDeadline: le.RenewDeadline, RetryPeriod: le.RetryPeriod,
			KeepLeaseOnCancel: le.KeepLeaseOnShutdown, Logger: opts.Logger.WithName("leader"),
		})
		if err != nil {
			return nil, fmt.Errorf("new manager: %w", err)
		}
		m.opts.LeaderElection = le
		m.metrics.SetLeader(le.LeaseName, false)
	}
	if so := opts.SecureMetrics; so != nil && opts.MetricsBindAddress != DisabledAddress {
		so := *so
		if so.Config == nil {
			so.Config = cfg
		}
		if so.Logger.GetSink() == nil {
			so.Logger = opts.Logger.WithName("metrics")
		}
		if m.secure, err = secure.New(so); err != nil {
			return nil, fmt.Errorf("new manager: %w", err)
		}
	}
	m.probes.AddHealthz("ping", health.Ping)
	m.probes.AddReadyz("informers", m.informersSynced)
	m.probes.AddReadyz("controllers", m.controllersRunning)
	return m, nil
}

// Config returns the rest.Config the manager uses (with its QPS and burst), for
// reconcilers that need their own clients.
func (m *Manager) Config() *rest.Config { return rest.CopyConfig(m.cfg) }

// Metrics returns the registry every engine metric lives in.
func (m *Manager) Metrics() *metrics.Registry { return m.metrics }

// Informers returns the shared informer registry, for reconcilers that read
// from the cache.
func (m *Manager) Informers() *informers.Registry { return m.informers }

// Started is closed when Start has connected, bound its servers and wired the
// controllers added before it.
func (m *Manager) Started() <-chan struct{} { return m.started }

// MetricsAddress returns the address /metrics is served on ("" when disabled
// or before Started), useful with a ":0" bind address.
func (m *Manager) MetricsAddress() string { return m.addr("metrics") }

// HealthProbeAddress returns the address the probes are served on ("" when
// disabled or before Started).
func (m *Manager) HealthProbeAddress() string { return m.addr("probes") }

func (m *Manager) addr(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addrs[name]
}

// Leading reports whether this manager runs workers: it holds the lease, or
// leader election is disabled and it is running.
func (m *Manager) Leading() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leadCtx != nil && m.leadCtx.Err() == nil
}

// Identity names this replica: its leader-election identity, or the host name
// when leader election is disabled.
func (m *Manager) Identity() string {
	if m.elector != nil {
		return m.elector.Identity()
	}
	name, _ := os.Hostname()
	return name
}

// Start connects to the API server, serves the probes and metrics, wires the
// controllers, campaigns for the lease (if enabled) and runs workers while
// leading. It blocks until ctx is cancelled (graceful shutdown, returns nil) or
// the lease is lost (returns an error wrapping leader.ErrLost), and it returns
// an error at once if the API server cannot be reached or a server cannot bind.
func (m *Manager) Start(ctx context.Context) (err error) {
	m.mu.Lock()
	if m.state != stateNew {
		m.mu.Unlock()
		return errors.New("start manager: already started")
	}
	m.state = stateRunning
	m.mu.Unlock()
	defer m.informers.Stop()

	if err := m.checkAPIServer(ctx); err != nil {
		_ = m.shutdown(false)
		return err
	}
	stopServers, err := m.serve()
	if err != nil {
		_ = m.shutdown(false)
		return err
	}
	defer stopServers()

	m.mu.Lock()
	for _, c := range m.sortedControllers() {
		if err := m.wire(ctx, c); err != nil {
			m.mu.Unlock()
			_ = m.shutdown(false)
			return fmt.Errorf("start manager: %w", err)
		}
	}
	m.mu.Unlock()
	close(m.started)

	lost := make(chan error, 1)
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	var election sync.WaitGroup
	if m.elector == nil {
		m.lead(electCtx)
	} else {
		m.log.Info("Campaigning for the lease", "lease", m.opts.LeaderElection.Namespace+"/"+m.opts.LeaderElection.LeaseName, "identity", m.elector.Identity())
		election.Go(func() { lost <- m.elector.Run(electCtx, m.lead) })
	}

	select {
	case <-ctx.Done():
		m.log.Info("Shutting down: stopping workers", "gracefulShutdownTimeout", m.opts.GracefulShutdownTimeout)
		err = m.shutdown(m.elector != nil)
	case err = <-lost:
		m.log.Error(err, "Lost the lease: stopped all workers")
		if serr := m.shutdown(false); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	// Workers have stopped (or the lease is kept): now the election may end.
	stopElection()
	election.Wait()
	m.log.Info("Manager stopped")
	return err
}

// checkAPIServer fails fast with a clear error when the API server cannot be
// reached or refuses the credentials.
func (m *Manager) checkAPIServer(ctx context.Context) error {
	disco, err := discovery.NewDiscoveryClientForConfig(m.cfg)
	if err != nil {
		return fmt.Errorf("start manager: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := disco.RESTClient().Get().AbsPath("/version").Do(ctx).Raw(); err != nil {
		return fmt.Errorf("start manager: reach API server %s: %w", m.cfg.Host, err)
	}
	return nil
}

// serve binds the metrics and probe servers and returns a function that stops
// them.
func (m *Manager) serve() (stop func(), err error) {
	var servers []*http.Server
	var wg sync.WaitGroup
	certCtx, stopCerts := context.WithCancel(context.Background())
	metricsHandler := metricsMux(m.metrics.Handler(), m.metricsPaths)
	if m.secure != nil {
		metricsHandler = m.secure.Handler(metricsHandler)
		wg.Go(func() { m.secure.Run(certCtx) }) // reloads a mounted certificate
	}
	stop = func() {
		stopCerts()
		for _, s := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.Shutdown(ctx)
			cancel()
		}
		wg.Wait()
	}
	for _, s := range []struct {
		name, addr string
		handler    http.Handler
	}{
		{"metrics", m.opts.MetricsBindAddress, metricsHandler},
		{"probes", m.opts.HealthProbeBindAddress, m.probes.Handler()},
	} {
		if s.addr == DisabledAddress {
			continue
		}
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("start manager: serve %s on %q: %w", s.name, s.addr, err)
		}
		srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		addr := l.Addr().String()
		secured := s.name == "metrics" && m.secure != nil
		if secured {
			l = m.secure.Listener(l)
		}
		wg.Go(func() { _ = srv.Serve(l) })
		m.mu.Lock()
		m.addrs[s.name] = addr
		m.mu.Unlock()
		m.log.Info("Serving "+s.name, "address", addr, "secure", secured)
	}
	return stop, nil
}

func metricsMux(h http.Handler, extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	for path, h := range extra {
		mux.Handle(path, h)
	}
	return mux
}

// AddHealthz adds (or replaces) a liveness check of /healthz: when it fails,
// the kubelet restarts the pod. Use it only for states a restart cures.
func (m *Manager) AddHealthz(name string, c health.Check) { m.probes.AddHealthz(name, c) }

// HandleMetricsPath serves h at path on the metrics server, next to /metrics
// (the module registry's /modules is one). Call it before Start.
func (m *Manager) HandleMetricsPath(path string, h http.Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateNew {
		return fmt.Errorf("handle %s: the manager has started", path)
	}
	if path == "/metrics" || m.metricsPaths[path] != nil {
		return fmt.Errorf("handle %s: path already served", path)
	}
	if m.metricsPaths == nil {
		m.metricsPaths = map[string]http.Handler{}
	}
	m.metricsPaths[path] = h
	return nil
}

// lead runs every controller's workers under ctx, which ends with leadership.
func (m *Manager) lead(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateRunning {
		return
	}
	m.leadCtx = ctx
	// Without election the manager leads alone and says so: a single replica
	// that follows the defaults reports one leader (WreNoLeader stays quiet),
	// and two such replicas, which would both reconcile, report two
	// (WreMultipleLeaders fires, as it should).
	m.metrics.SetLeader(m.opts.LeaderElection.LeaseName, true)
	context.AfterFunc(ctx, func() { m.metrics.SetLeader(m.opts.LeaderElection.LeaseName, false) })
	m.log.Info("Leading: starting workers", "controllers", len(m.controllers))
	for _, c := range m.sortedControllers() {
		m.startWorkers(c)
	}
}

// cancelGrace is how long reconciles cancelled at the end of the graceful
// shutdown timeout may take to return: enough for ones that honour their
// context.
const cancelGrace = time.Second

// shutdown stops every controller gracefully, in parallel, within the graceful
// shutdown timeout, then releases their informers. If reconciles still run
// after that and their cancellation, and electing says this process may hold
// the lease, it keeps the lease so that no standby starts workers before it
// expires.
func (m *Manager) shutdown(electing bool) error {
	m.mu.Lock()
	m.state = stateStopping
	cs := m.sortedControllers()
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), m.opts.GracefulShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		wg.Go(func() { errs[i] = m.stopController(ctx, c) })
	}
	wg.Wait()
	deadline, _ := ctx.Deadline()
	switch {
	case m.workersDone(deadline.Add(cancelGrace)):
	case electing:
		m.elector.KeepLease()
		m.log.Info("Reconciles ignore cancellation: leaving them behind and keeping the lease, so that no standby starts workers until it expires",
			"leaseDuration", m.opts.LeaderElection.LeaseDuration)
	default:
		m.log.Info("Reconciles ignore cancellation: leaving them behind")
	}
	return errors.Join(errs...)
}

// workersDone waits until the controllers' Start calls have returned or the
// deadline passed, and reports whether they returned.
func (m *Manager) workersDone(deadline time.Time) bool {
	done := make(chan struct{})
	go func() {
		m.workers.Wait()
		close(done)
	}()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func (m *Manager) sortedControllers() []*managed {
	cs := make([]*managed, 0, len(m.controllers))
	for _, c := range m.controllers {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *managed) int { return strings.Compare(a.spec.Name, b.spec.Name) })
	return cs
}

func (m *Manager) informersSynced(*http.Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.sortedControllers() {
		for _, w := range c.watched {
			if !w.informer.HasSynced() {
				return fmt.Errorf("controller %q: informer %s not synced", c.spec.Name, w.gvr)
			}
		}
	}
	return nil
}

func (m *Manager) controllersRunning(*http.Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leadCtx == nil || m.leadCtx.Err() != nil {
		return nil // a standby is ready once its caches are
	}
	for _, c := range m.sortedControllers() {
		if !c.ctrl.Running() {
			return fmt.Errorf("controller %q: workers not running", c.spec.Name)
		}
	}
	return nil
}
