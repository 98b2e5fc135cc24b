package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// Defaults of Options, those of controller-runtime and kube-controller-manager.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// ErrLost is returned by Run when this process lost the lease it held.
var ErrLost = errors.New("leader election lost")

// Options configure an Elector.
type Options struct {
	// Config reaches the API server. Required.
	Config *rest.Config
	// LeaseName names the Lease object. Required.
	LeaseName string
	// Namespace of the Lease. Required.
	Namespace string
	// Identity of this process in the Lease. Defaults to the host name plus a
	// random suffix, unique per process.
	Identity string
	// LeaseDuration is how long standbys wait after the last observed renewal
	// before taking over. Defaults to DefaultLeaseDuration (15 s).
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps retrying to renew before it
	// gives up the lead. Defaults to DefaultRenewDeadline (10 s).
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts to acquire or renew.
	// Defaults to DefaultRetryPeriod (2 s).
	RetryPeriod time.Duration
	// KeepLeaseOnCancel keeps the lease held when Run's context is done, so
	// standbys wait for it to expire. Defaults to false: the lease is released.
	KeepLeaseOnCancel bool
	// Logger receives election logs. Defaults to logr.Discard().
	Logger logr.Logger
}

// Elector campaigns for one Lease.
type Elector struct {
	opts   Options
	lock   *keepableLock
	client kubernetes.Interface
	clock  clock.Clock
}

// New validates opts and returns an Elector; it does not contact the API server.
func New(opts Options) (*Elector, error) {
	if opts.Config == nil {
		return nil, errors.New("leader election: Options.Config is required")
	}
	if opts.LeaseName == "" || opts.Namespace == "" {
		return nil, errors.New("leader election: Options.LeaseName and Options.Namespace are required")
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.RenewDeadline == 0 {
		opts.RenewDeadline = DefaultRenewDeadline
	}
	if opts.RetryPeriod == 0 {
		opts.RetryPeriod = DefaultRetryPeriod
	}
	if opts.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("leader election: identity: %w", err)
		}
		opts.Identity = host + "_" + uuid.NewString()
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	// The same checks as client-go's, up front, so a bad flag fails at start.
	if opts.LeaseDuration <= opts.RenewDeadline {
		return nil, fmt.Errorf("leader election %q: lease duration %s must be greater than renew deadline %s", opts.LeaseName, opts.LeaseDuration, opts.RenewDeadline)
	}
	if opts.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(opts.RetryPeriod)) {
		return nil, fmt.Errorf("leader election %q: renew deadline %s must be greater than retry period %s × %.1f", opts.LeaseName, opts.RenewDeadline, opts.RetryPeriod, leaderelection.JitterFactor)
	}
	if opts.RetryPeriod < 0 {
		return nil, fmt.Errorf("leader election %q: retry period %s must be positive", opts.LeaseName, opts.RetryPeriod)
	}
	// Lease calls time out at half the renew deadline (as client-go's
	// NewFromKubeconfig does) so one hung request cannot eat the deadline.
	lock, err := resourcelock.NewFromKubeconfig(resourcelock.LeasesResourceLock, opts.Namespace, opts.LeaseName,
		resourcelock.ResourceLockConfig{Identity: opts.Identity}, opts.Config, opts.RenewDeadline)
	if err != nil {
		return nil, fmt.Errorf("leader election %q: %w", opts.LeaseName, err)
	}
	client, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("leader election %q: %w", opts.LeaseName, err)
	}
	e := &Elector{opts: opts, lock: &keepableLock{Interface: lock}, client: client, clock: clock.RealClock{}}
	e.lock.keep.Store(opts.KeepLeaseOnCancel)
	return e, nil
}

// Identity returns the identity this process writes into the Lease.
func (e *Elector) Identity() string { return e.opts.Identity }

// KeepLease makes Run keep a held lease when its context is done instead of
// releasing it, as KeepLeaseOnCancel does: standbys then wait until it expires,
// LeaseDuration after its last renewal. Call it before cancelling Run's context
// when work that the lease guards may still be running, and exit the process
// soon after so that the work ends before the lease does.
func (e *Elector) KeepLease() { e.lock.keep.Store(true) }

// Run campaigns until ctx is done or the lease is lost. While this process
// leads, lead runs with a context that is cancelled when leadership ends; Run
// does not wait for lead to return. Run returns nil when ctx is done and ErrLost
// when the lease was lost first.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) error {
	log := e.opts.Logger.WithValues("lease", e.opts.Namespace+"/"+e.opts.LeaseName, "identity", e.opts.Identity)
	ctx = logr.NewContext(ctx, log) // client-go logs through klog.FromContext
	w := e.watchLease(ctx, log)
	defer w.stop()
	for {
		a := &attempt{}
		var actx context.Context
		actx, a.cancel = context.WithCancel(ctx)
		w.current(a)
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:          e.lock,
			Name:          e.opts.LeaseName,
			LeaseDuration: e.opts.LeaseDuration,
			RenewDeadline: e.opts.RenewDeadline,
			RetryPeriod:   e.opts.RetryPeriod,
			// The lock skips the release once KeepLease was called.
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					if a.lead() {
						log.Info("Acquired lease, leading")
						lead(lctx)
					}
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			a.cancel()
			return fmt.Errorf("leader election %q: %w", e.opts.LeaseName, err)
		}
		le.Run(actx)
		a.cancel()
		switch {
		case a.leading():
			if ctx.Err() != nil {
				log.Info("Stopped leading", "released", !e.lock.keep.Load())
				return nil
			}
			log.Info("Lost lease")
			return fmt.Errorf("leader election %q: %w", e.opts.LeaseName, ErrLost)
		case ctx.Err() != nil:
			return nil
		default:
			log.V(1).Info("Campaigning at once", "reason", a.reason())
		}
	}
}

// keepableLock is the lock client-go writes through. Once keep is set it skips
// client-go's release, the one Update without a holder, so the lease stays
// held until it expires.
type keepableLock struct {
	resourcelock.Interface
	keep atomic.Bool
}

func (l *keepableLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	if r.HolderIdentity == "" && l.keep.Load() {
		return nil
	}
	return l.Interface.Update(ctx, r)
}

// attempt is one run of client-go's elector. A standby attempt is restarted
// when the lease is released or this process took it over; once it leads it is
// never restarted.
type attempt struct {
	mu        sync.Mutex
	led       bool
	restarted string // why, when restarted
	cancel    context.CancelFunc
}

// lead reports whether the attempt may lead (it was not restarted) and marks it
// leading.
func (a *attempt) lead() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.led = a.restarted == ""
	return a.led
}

func (a *attempt) leading() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.led
}

func (a *attempt) reason() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.restarted
}

// restart cancels a standby attempt; it does nothing to a leading one.
func (a *attempt) restart(why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.led && a.restarted == "" {
		a.restarted = why
		a.cancel()
	}
}
