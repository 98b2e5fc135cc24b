package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// AdminUser is the name of the admin identity; it is in system:masters.
const AdminUser = "wre-admin"

// Options configure Start. The zero value is ready to use.
type Options struct {
	// Dir holds data, certificates, logs and kubeconfigs. Defaults to a new
	// temporary directory os.TempDir()/wre-controlplane-*, removed by Stop or,
	// when the process dies first, by the next Start.
	Dir string
	// Log receives build and progress messages. Defaults to io.Discard.
	Log io.Writer
	// Detached starts the components in their own sessions so they outlive
	// this process (for `make cluster-up`); stop them with StopDetached. Their
	// directory outlives this process too (no sweep removes a directory that
	// a running process names).
	Detached bool
	// ReadyTimeout bounds the wait for each component to become ready.
	// Defaults to 90s.
	ReadyTimeout time.Duration
}

// ControlPlane is a running etcd, kube-apiserver and kube-controller-manager.
type ControlPlane struct {
	opts    Options
	dir     string
	ownsDir bool
	binDir  string
	token   string
	pki     *pki

	etcdPort, etcdPeerPort, apiPort, kcmPort int

	etcd, apiserver, kcm *process
	lock                 *os.File // flock on dir/.lock while Start's own dir is in use
	stopOnce             sync.Once
	stopErr              error
}

// state is written to Dir/state.json so a detached control plane can be found
// and stopped by another process.
type state struct {
	Kubeconfig string `json:"kubeconfig"`
	Server     string `json:"server"`
	PIDs       []int  `json:"pids"`
}

// startAttempts bounds how often Start tries new ports after a component lost
// its port to another process (see FreePorts).
const startAttempts = 3

// freePorts picks the components' ports; tests replace it.
var freePorts = FreePorts

// Start builds missing binaries, starts etcd, kube-apiserver and
// kube-controller-manager on free loopback ports and waits until the API
// server's /readyz and the controller manager's /healthz answer ok.
//
// When a component exits during startup because its port was taken ("address
// already in use"), Start stops what it started, removes etcd's data and tries
// again on new ports, up to three attempts in all. On error everything
// started so far is stopped again (see Stop).
//
// Without Options.Dir, Start first removes the directories that earlier
// control planes left in os.TempDir() when their process died before Stop (a
// panic, a -timeout; see sweepStaleDirs), then creates its own and holds a
// lock on it until Stop.
func Start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 90 * time.Second
	}
	binDir, err := EnsureBinaries(ctx, opts.Log)
	if err != nil {
		return nil, err
	}
	c := &ControlPlane{opts: opts, binDir: binDir}
	if opts.Dir == "" {
		root, err := filepath.Abs(os.TempDir())
		if err != nil {
			return nil, fmt.Errorf("create control plane directory: %w", err)
		}
		sweepStaleDirs(root, opts.Log)
		if c.dir, err = os.MkdirTemp(root, dirPrefix); err != nil {
			return nil, fmt.Errorf("create control plane directory: %w", err)
		}
		if c.lock, err = lockDir(c.dir); err != nil {
			_ = os.RemoveAll(c.dir)
			return nil, err
		}
		c.ownsDir = true
	} else {
		// Absolute, so that the components' command lines name it whatever the
		// working directory of StopDetached.
		if c.dir, err = filepath.Abs(opts.Dir); err != nil {
			return nil, fmt.Errorf("create control plane directory: %w", err)
		}
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, fmt.Errorf("create control plane directory: %w", err)
		}
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if err := c.prepare(); err != nil {
		return nil, err
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := c.startComponents(ctx)
		if err == nil {
			break
		}
		lost := c.lostPort()
		if lost == nil || attempt == startAttempts || ctx.Err() != nil {
			return nil, err
		}
		fmt.Fprintf(opts.Log, "controlplane: %s lost its port to another process (address already in use); retrying on new ports (attempt %d of %d)\n",
			lost.name, attempt+1, startAttempts)
		if err := c.stopComponents(); err != nil {
			return nil, err
		}
		// etcd would keep the member's old peer URL and refuse the new one.
		if err := os.RemoveAll(c.path("etcd")); err != nil {
			return nil, fmt.Errorf("remove etcd data of the failed attempt: %w", err)
		}
	}
	if err := c.writeState(); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "controlplane: ready in %s at %s (kubeconfig %s)\n",
		time.Since(start).Round(time.Millisecond), c.Server(), c.KubeconfigPath())
	return c, nil
}

// prepare writes what every attempt shares: certificates and the token file.
func (c *ControlPlane) prepare() error {
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	c.token = hex.EncodeToString(buf)
	var err error
	if c.pki, err = writePKI(c.dir); err != nil {
		return fmt.Errorf("write certificates: %w", err)
	}
	tokens := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", c.token, AdminUser, AdminUser)
	return os.WriteFile(c.path("tokens.csv"), []byte(tokens), 0o600)
}

// startComponents picks ports, writes the admin kubeconfig for them and starts
// etcd, the API server and the controller manager.
func (c *ControlPlane) startComponents(ctx context.Context) error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	c.etcdPort, c.etcdPeerPort, c.apiPort, c.kcmPort = ports[0], ports[1], ports[2], ports[3]
	if err := writeKubeconfig(c.KubeconfigPath(), c.Config()); err != nil {
		return err
	}
	if err := c.startEtcd(ctx); err != nil {
		return err
	}
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}
	return c.startControllerManager(ctx)
}

// lostPort returns the component that exited because its port was taken, or
// nil.
func (c *ControlPlane) lostPort() *process {
	for _, p := range []*process{c.etcd, c.apiserver, c.kcm} {
		if p.exitedWith("address already in use") {
			return p
		}
	}
	return nil
}

// stopComponents stops the controller manager, the API server and etcd, in
// that order.
func (c *ControlPlane) stopComponents() error {
	var errs []error
	for _, step := range []struct {
		p     *process
		grace time.Duration
	}{{c.kcm, 2 * time.Second}, {c.apiserver, time.Second}, {c.etcd, 5 * time.Second}} {
		if step.p != nil {
			errs = append(errs, step.p.stop(step.grace))
		}
	}
	return errors.Join(errs...)
}

func (c *ControlPlane) path(name string) string { return filepath.Join(c.dir, name) }

func (c *ControlPlane) newProcess(name string, args ...string) *process {
	return &process{
		name:     name,
		path:     filepath.Join(c.binDir, name),
		args:     args,
		logPath:  c.path(name + ".log"),
		detached: c.opts.Detached,
	}
}

func (c *ControlPlane) startEtcd(ctx context.Context) error {
	client := "http://127.0.0.1:" + strconv.Itoa(c.etcdPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(c.etcdPeerPort)
	c.etcd = c.newProcess("etcd",
		"--name=default",
		"--data-dir="+c.path("etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	)
	if err := c.etcd.start(); err != nil {
		return err
	}
	return c.waitHealthy(ctx, c.etcd, client+"/health", nil)
}

// StartEtcd starts etcd again, after StopEtcd, on the same ports and data
// directory, and waits until it is healthy. The API server, still running,
// reconnects by itself.
func (c *ControlPlane) StartEtcd(ctx context.Context) error {
	if c.etcd != nil && c.etcd.running() {
		return errors.New("etcd is already running")
	}
	if err := c.startEtcd(ctx); err != nil {
		return err
	}
	return c.writeState()
}

// StopEtcd stops etcd alone (SIGTERM, then SIGKILL after 5 s), keeping its
// data; the API server keeps running without its storage.
func (c *ControlPlane) StopEtcd() error {
	if c.etcd == nil {
		return nil
	}
	if err := c.etcd.stop(5 * time.Second); err != nil {
		return err
	}
	return c.writeState()
}

// RestartEtcd stops and starts etcd; its data survives.
func (c *ControlPlane) RestartEtcd(ctx context.Context) error {
	if err := c.StopEtcd(); err != nil {
		return err
	}
	return c.StartEtcd(ctx)
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the
// same port and data and waits for /readyz.
func (c *ControlPlane) StartAPIServer(ctx context.Context) error {
	if c.apiserver != nil && c.apiserver.running() {
		return errors.New("kube-apiserver is already running")
	}
	c.apiserver = c.newProcess("kube-apiserver",
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(c.etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The endpoint reconciler refuses loopback addresses; nothing here needs
		// the kubernetes Service endpoints.
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(c.apiPort),
		"--tls-cert-file="+c.pki.servingCert,
		"--tls-private-key-file="+c.pki.servingKey,
		"--token-auth-file="+c.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+c.pki.saPublic,
		"--service-account-signing-key-file="+c.pki.saPrivate,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--cert-dir="+c.path("apiserver-certs"),
		"--profiling=false",
		"--v=0",
	)
	if err := c.apiserver.start(); err != nil {
		return err
	}
	if err := c.waitHealthy(ctx, c.apiserver, c.Server()+"/readyz", c.authHeader()); err != nil {
		return err
	}
	return c.writeState()
}

// StopAPIServer stops kube-apiserver alone, leaving etcd and its data in place.
func (c *ControlPlane) StopAPIServer() error {
	if c.apiserver == nil {
		return nil
	}
	// kube-apiserver drains for a long time on SIGTERM; tests want it gone.
	if err := c.apiserver.stop(time.Second); err != nil {
		return err
	}
	return c.writeState()
}

// RestartAPIServer stops and starts kube-apiserver; data in etcd survives.
func (c *ControlPlane) RestartAPIServer(ctx context.Context) error {
	if err := c.StopAPIServer(); err != nil {
		return err
	}
	return c.StartAPIServer(ctx)
}

func (c *ControlPlane) startControllerManager(ctx context.Context) error {
	c.kcm = c.newProcess("kube-controller-manager",
		"--kubeconfig="+c.KubeconfigPath(),
		// Aggregated ClusterRoles (deploy/ grants modules through one) need the
		// aggregation controller.
		"--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,clusterrole-aggregation-controller",
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(c.kcmPort),
		"--cert-dir="+c.path("kcm-certs"),
		"--use-service-account-credentials=false",
		"--v=0",
	)
	if err := c.kcm.start(); err != nil {
		return err
	}
	return c.waitHealthy(ctx, c.kcm, "https://127.0.0.1:"+strconv.Itoa(c.kcmPort)+"/healthz", nil)
}

func (c *ControlPlane) authHeader() http.Header {
	return http.Header{"Authorization": []string{"Bearer " + c.token}}
}

// waitHealthy polls url until it answers 200, the process exits, or the ready
// timeout passes.
func (c *ControlPlane) waitHealthy(ctx context.Context, p *process, url string, header http.Header) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ReadyTimeout)
	defer cancel()
	// A probe must not hang when the process is gone: whoever holds the port
	// instead (see lostPort) may accept and never answer.
	probeCtx, cancelProbe := context.WithCancel(ctx)
	defer cancelProbe()
	go func() {
		select {
		case <-p.done:
			cancelProbe()
		case <-probeCtx.Done():
		}
	}()
	// The controller manager serves a self-signed certificate; the API server
	// one from our CA. Health checks only need to reach the endpoint.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe
	}}
	defer client.CloseIdleConnections()
	var last string
	for {
		req, err := http.NewRequestWithContext(probeCtx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return p.exited()
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s after %s (last: %s)\n%s", p.name, url, c.opts.ReadyTimeout, last, Tail(p.logPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Server returns the API server URL.
func (c *ControlPlane) Server() string { return "https://127.0.0.1:" + strconv.Itoa(c.apiPort) }

// Dir returns the directory holding data, logs and kubeconfigs.
func (c *ControlPlane) Dir() string { return c.dir }

// Config returns a new admin (system:masters) client configuration.
func (c *ControlPlane) Config() *rest.Config {
	return &rest.Config{
		Host:            c.Server(),
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.caPEM},
		QPS:             200,
		Burst:           400,
	}
}

// ConfigFor returns a configuration that impersonates user with groups, so
// that the cluster's RBAC decides what it may do.
func (c *ControlPlane) ConfigFor(user string, groups ...string) *rest.Config {
	cfg := c.Config()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// ServiceAccountConfig returns a configuration that impersonates the service
// account namespace/name with the groups the API server gives it.
func (c *ControlPlane) ServiceAccountConfig(namespace, name string) *rest.Config {
	return c.ConfigFor("system:serviceaccount:"+namespace+":"+name,
		"system:serviceaccounts", "system:serviceaccounts:"+namespace, "system:authenticated")
}

// KubeconfigPath returns the admin kubeconfig file.
func (c *ControlPlane) KubeconfigPath() string { return c.path("kubeconfig") }

// WriteKubeconfig writes a kubeconfig for cfg (e.g. from ConfigFor) to path.
func (c *ControlPlane) WriteKubeconfig(path string, cfg *rest.Config) error {
	return writeKubeconfig(path, cfg)
}

func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["wre"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["wre"] = &clientcmdapi.AuthInfo{
		Token:             cfg.BearerToken,
		Impersonate:       cfg.Impersonate.UserName,
		ImpersonateGroups: cfg.Impersonate.Groups,
	}
	kc.Contexts["wre"] = &clientcmdapi.Context{Cluster: "wre", AuthInfo: "wre", Namespace: "default"}
	kc.CurrentContext = "wre"
	return clientcmd.WriteToFile(*kc, path)
}

// PIDs returns the process ids of the running components.
func (c *ControlPlane) PIDs() []int {
	var pids []int
	for _, p := range []*process{c.etcd, c.apiserver, c.kcm} {
		if p != nil && p.running() {
			pids = append(pids, p.pid())
		}
	}
	return pids
}

func (c *ControlPlane) writeState() error {
	data, err := json.MarshalIndent(state{Kubeconfig: c.KubeconfigPath(), Server: c.Server(), PIDs: c.PIDs()}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.path("state.json"), data, 0o644)
}

// Stop stops every component (controller manager, API server, etcd, in that
// order), removes the directory if Start created it (else its state.json, so
// that the directory can be used again) and releases the directory's lock. It
// is idempotent and safe to call concurrently (RunMain's signal handler and its
// deferred Stop may race): every call returns after the first one finished,
// with its error.
func (c *ControlPlane) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *ControlPlane) stop() error {
	errs := []error{c.stopComponents()}
	if c.ownsDir {
		errs = append(errs, os.RemoveAll(c.dir))
	} else if err := os.Remove(c.path("state.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if c.lock != nil {
		errs = append(errs, c.lock.Close())
	}
	return errors.Join(errs...)
}

// StopDetached stops a control plane that Start ran with Detached in dir and
// removes dir. It stops the recorded processes and every other process group
// leader whose command line names dir (a component restarted by a process
// that did not record it), and signals a recorded process only while its
// command line names dir, so that processes that reuse the recorded ids after
// a reboot survive.
func StopDetached(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return fmt.Errorf("read control plane state: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("parse %s: %w", filepath.Join(dir, "state.json"), err)
	}
	// Reverse start order: controller manager, API server, etcd.
	for i := len(st.PIDs) - 1; i >= 0; i-- {
		killGroup(st.PIDs[i], dir, 2*time.Second)
	}
	running, err := componentGroups(dir)
	if err != nil {
		return err
	}
	for _, pid := range running {
		killGroup(pid, dir, 2*time.Second)
	}
	return os.RemoveAll(dir)
}
