package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/wre-dev/wre/engine/metrics"
	"github.com/wre-dev/wre/engine/queue"
	"github.com/wre-dev/wre/host/reconcile"
)

// DefaultReconcileTimeout is the ReconcileTimeout used when Options leaves it 0.
const DefaultReconcileTimeout = time.Minute

// NoReconcileTimeout disables the per-reconcile timeout.
const NoReconcileTimeout time.Duration = -1

// ErrStarted is returned by Start when the Controller was already started or
// stopped: a Controller runs at most once.
var ErrStarted = errors.New("controller already started or stopped")

// errReconcileTimeout is the cause of a reconcile context cancelled by the
// per-reconcile timeout.
var errReconcileTimeout = errors.New("reconcile timed out")

// Options configure a Controller.
type Options struct {
	// Name identifies the controller in logs and metrics and names its queue.
	// Required.
	Name string
	// MaxConcurrentReconciles is the number of workers. Defaults to 1.
	MaxConcurrentReconciles int
	// ReconcileTimeout bounds one reconcile through its context. Defaults to
	// DefaultReconcileTimeout (1 m); NoReconcileTimeout disables it.
	ReconcileTimeout time.Duration
	// RateLimiter decides the backoff of failed requests. Defaults to
	// queue.DefaultRateLimiter.
	RateLimiter workqueue.TypedRateLimiter[reconcile.Request]
	// Clock is the time source of the queue and of the timeout. Defaults to
	// clock.RealClock{}.
	Clock clock.WithTicker
	// Logger receives the controller's logs; "controller" is added to its values.
	// Defaults to logr.Discard().
	Logger logr.Logger
	// Metrics records reconciles and queue metrics. Defaults to a private
	// metrics.Registry.
	Metrics *metrics.Registry
}

// Controller feeds one Reconciler from a priority work queue.
type Controller struct {
	name    string
	workers int
	timeout time.Duration
	do      reconcile.Reconciler
	clock   clock.WithTicker
	log     logr.Logger
	metrics *metrics.Controller
	queue   *queue.Queue[reconcile.Request]
	errs    errorRuns

	mu       sync.Mutex
	state    state
	stopping chan struct{}      // closed by Stop: hand out no more work
	ctx      context.Context    // the workers' context
	cancel   context.CancelFunc // cancels the workers' context
	done     chan struct{}      // closed when every worker has returned
}

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped
)

// New returns a Controller for r whose queue accepts requests at once; its
// workers start with Start.
func New(r reconcile.Reconciler, opts Options) (*Controller, error) {
	if opts.Name == "" {
		return nil, errors.New("new controller: Options.Name is required")
	}
	if r == nil {
		return nil, fmt.Errorf("new controller %q: reconciler is nil", opts.Name)
	}
	if opts.MaxConcurrentReconciles < 0 {
		return nil, fmt.Errorf("new controller %q: MaxConcurrentReconciles %d must not be negative", opts.Name, opts.MaxConcurrentReconciles)
	}
	if opts.ReconcileTimeout < 0 && opts.ReconcileTimeout != NoReconcileTimeout {
		return nil, fmt.Errorf("new controller %q: ReconcileTimeout %s must not be negative (use NoReconcileTimeout)", opts.Name, opts.ReconcileTimeout)
	}
	if opts.MaxConcurrentReconciles == 0 {
		opts.MaxConcurrentReconciles = 1
	}
	if opts.ReconcileTimeout == 0 {
		opts.ReconcileTimeout = DefaultReconcileTimeout
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = queue.DefaultRateLimiter[reconcile.Request]()
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	return &Controller{
		name:    opts.Name,
		workers: opts.MaxConcurrentReconciles,
		timeout: opts.ReconcileTimeout,
		do:      r,
		clock:   opts.Clock,
		log:     opts.Logger.WithValues("controller", opts.Name),
		metrics: opts.Metrics.Controller(opts.Name, opts.MaxConcurrentReconciles),
		queue: queue.New(queue.Options[reconcile.Request]{
			Name:            opts.Name,
			RateLimiter:     opts.RateLimiter,
			Clock:           opts.Clock,
			MetricsProvider: opts.Metrics.WorkqueueProvider(),
			PriorityDepth:   opts.Metrics.PriorityDepth,
		}),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// Name returns the controller's name.
func (c *Controller) Name() string { return c.name }

// AddWithPriority queues req at priority p; event handlers call it.
func (c *Controller) AddWithPriority(req reconcile.Request, p queue.Priority) {
	c.queue.AddWithPriority(req, p)
}

// Enqueue queues req at queue.PriorityNormal.
func (c *Controller) Enqueue(req reconcile.Request) { c.queue.Add(req) }

// Len returns the number of requests waiting for a worker.
func (c *Controller) Len() int { return c.queue.Len() }

// Start runs the workers until ctx is cancelled or Stop is called, and returns
// when every worker has returned. Cancelling ctx also cancels the in-flight
// reconciles. It returns ErrStarted if the Controller already ran.
func (c *Controller) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.state != stateNew {
		c.mu.Unlock()
		return fmt.Errorf("start controller %q: %w", c.name, ErrStarted)
	}
	c.state = stateRunning
	ctx, c.cancel = context.WithCancel(ctx)
	c.ctx = ctx
	c.mu.Unlock()
	defer c.cancel()

	c.log.Info("Starting workers", "workers", c.workers)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for c.processNextWorkItem(ctx) {
			}
		})
	}
	select {
	case <-ctx.Done():
	case <-c.stopping:
	}
	// The queue hands out the items it still holds after ShutDown; the workers
	// drop them (processNextWorkItem checks stopped), so no new work starts.
	c.queue.ShutDown()
	wg.Wait()
	c.log.Info("Workers stopped")
	close(c.done)
	return nil
}

// Stop stops handing out work and waits until the in-flight reconciles finish
// or ctx is done; then their contexts are cancelled and Stop returns an error.
// The queue is shut down, so the Controller cannot run again. Stop may be called
// before Start, and more than once.
func (c *Controller) Stop(ctx context.Context) error {
	c.mu.Lock()
	switch c.state {
	case stateNew:
		c.state = stateStopped
		close(c.stopping)
		close(c.done)
		c.mu.Unlock()
		c.queue.ShutDown()
		return nil
	case stateRunning:
		select {
		case <-c.stopping:
		default:
			close(c.stopping)
		}
	}
	cancel := c.cancel
	c.mu.Unlock()

	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		cancel()
		return fmt.Errorf("stop controller %q: in-flight reconciles did not finish in time, cancelled them: %w", c.name, context.Cause(ctx))
	}
}

// Running reports whether the workers run and take new work: Start was called
// and neither Stop was called nor Start's context cancelled.
func (c *Controller) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateRunning && !c.stopped(c.ctx)
}

// Done is closed when the workers have stopped (or Stop was called before Start).
func (c *Controller) Done() <-chan struct{} { return c.done }

func (c *Controller) stopped(ctx context.Context) bool {
	select {
	case <-c.stopping:
		return true
	default:
		return ctx.Err() != nil
	}
}

// processNextWorkItem reconciles one request and reports whether the worker
// should go on.
func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	req, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(req)
	if c.stopped(ctx) {
		return false
	}

	c.metrics.WorkerBusy(1)
	defer c.metrics.WorkerBusy(-1)
	log := c.log.WithValues("reconcileID", uuid.NewString(), "namespace", req.Namespace, "name", req.Name)
	start := c.clock.Now()
	res, err := c.reconcile(logr.NewContext(ctx, log), req)
	took := c.clock.Since(start)

	switch {
	case err != nil:
		terminal := reconcile.IsTerminal(err)
		if terminal {
			c.queue.Forget(req)
			c.errs.ended(log, req, c.clock.Now())
			log.Error(err, "Reconciler error, not retried")
		} else {
			c.queue.AddRateLimited(req)
			c.errs.failed(log, req, err, c.clock.Now())
		}
		c.metrics.Reconciled(metrics.ResultError, took, terminal)
	case res.RequeueAfter > 0:
		c.queue.Forget(req)
		c.errs.ended(log, req, c.clock.Now())
		c.queue.AddAfter(req, res.RequeueAfter)
		log.V(1).Info("Reconcile done, requeue", "after", res.RequeueAfter)
		c.metrics.Reconciled(metrics.ResultRequeueAfter, took, false)
	default:
		c.queue.Forget(req)
		c.errs.ended(log, req, c.clock.Now())
		log.V(1).Info("Reconcile done")
		c.metrics.Reconciled(metrics.ResultSuccess, took, false)
	}
	return true
}

// reconcile calls the Reconciler under the timeout and turns a panic into a
// *reconcile.PanicError.
func (c *Controller) reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, err error) {
	if c.timeout > 0 {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		timer := c.clock.NewTimer(c.timeout)
		finished := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			select {
			case <-timer.C():
				cancel(errReconcileTimeout)
			case <-finished:
				timer.Stop()
			}
		})
		defer func() {
			close(finished)
			wg.Wait()
			if errors.Is(context.Cause(ctx), errReconcileTimeout) {
				c.metrics.TimedOut()
				logr.FromContextOrDiscard(ctx).Info("Reconcile ran past its timeout", "timeout", c.timeout)
			}
			cancel(nil)
		}()
	}
	defer func() {
		if v := recover(); v != nil {
			c.metrics.Panicked()
			err = &reconcile.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return c.do.Reconcile(ctx, req)
}
