package wre

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/internal/guest"
)

// Module describes a reconciler module to the SDK.
type Module struct {
	// Scheme maps the Go types the module reads and writes to their kinds.
	// Required. Add only the API groups the module uses (corev1.AddToScheme …)
	// and the module's own types: every group added grows the binary.
	Scheme *runtime.Scheme
	// Resources overrides the resource name of kinds whose plural the client
	// guesses wrong (see client.Mapper). Defaults to none.
	Resources map[schema.GroupKind]string
	// Setup builds the reconciler from the host's services. Required.
	Setup func(h *Host) (Reconciler, error)
}

// EventRecorder records Kubernetes Events about objects.
type EventRecorder interface {
	// Eventf records an event of type eventtype (corev1.EventTypeNormal or
	// EventTypeWarning) with a CamelCase reason. Recording is best effort: a
	// failure is logged, not returned.
	Eventf(obj client.Object, eventtype, reason, messageFmt string, args ...any)
}

// Transport connects a module to a host. The wasm build uses the wre.call and
// wre.log imports; package sdktest uses an in-memory host. Module authors do
// not implement it.
type Transport interface {
	// Call performs op with an encoded abi.Request and returns the encoded
	// abi.Response; an error means the call did not reach the host.
	Call(op abi.Op, req []byte) ([]byte, error)
	// Log writes one log line at level.
	Log(level abi.Level, msg []byte)
}

// Host gives a module's Setup the services of the host.
type Host struct {
	transport Transport
	client    *guest.Client
	log       logr.Logger
	recorder  EventRecorder
}

// Client returns the client for reading and writing objects.
func (h *Host) Client() client.Client { return h.client }

// Log returns the logger; the host tags its lines with the module and the
// reconcile ID.
func (h *Host) Log() logr.Logger { return h.log }

// Recorder returns the event recorder.
func (h *Host) Recorder() EventRecorder { return h.recorder }

// Config returns the module's configuration, the config of its manifest as a
// JSON object.
func (h *Host) Config(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp, err := guest.Call(h.transport, abi.OpConfig, &abi.Request{})
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return resp.Body, nil
}

// DecodeConfig decodes the module's configuration into v with encoding/json.
func (h *Host) DecodeConfig(ctx context.Context, v any) error {
	raw, err := h.Config(ctx)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	return nil
}

// Mapper returns the mapper from kinds to resources, with m.Resources applied.
func (m Module) Mapper() *client.Mapper {
	mapper := &client.Mapper{}
	for gk, r := range m.Resources {
		mapper.Override(gk, r)
	}
	return mapper
}

// Instance is a Module bound to a host: it decodes reconcile requests, runs the
// reconciler and encodes the responses. The wasm exports drive one; so does
// package sdktest.
type Instance struct {
	module     Module
	host       *Host
	reconciler Reconciler
	setupErr   error
}

// Instantiate binds m to t. Setup runs on the first reconcile.
func (m Module) Instantiate(t Transport) (*Instance, error) {
	if m.Scheme == nil {
		return nil, errors.New("wre: Module.Scheme is required")
	}
	if m.Setup == nil {
		return nil, errors.New("wre: Module.Setup is required")
	}
	c := guest.NewClient(t, m.Scheme, m.Mapper())
	log := guest.NewLogger(t)
	return &Instance{module: m, host: &Host{
		transport: t,
		client:    c,
		log:       log,
		recorder:  guest.NewRecorder(c, log.Error),
	}}, nil
}

// Reconcile handles one encoded abi.ReconcileRequest and returns the encoded
// abi.ReconcileResponse.
func (i *Instance) Reconcile(raw []byte) []byte {
	var req abi.ReconcileRequest
	if err := req.Unmarshal(raw); err != nil {
		return failure(fmt.Errorf("decode reconcile request: %w", err))
	}
	if i.reconciler == nil && i.setupErr == nil {
		i.setupErr = protect(func() (err error) {
			i.reconciler, err = i.module.Setup(i.host)
			if err == nil && i.reconciler == nil {
				err = errors.New("setup returned no reconciler")
			}
			return err
		})
	}
	if i.setupErr != nil {
		return failure(fmt.Errorf("setup: %w", i.setupErr))
	}
	ctx := context.WithValue(context.Background(), reconcileIDKey{}, req.ReconcileID)
	var res Result
	err := protect(func() (err error) {
		res, err = i.reconciler.Reconcile(ctx, Request{types.NamespacedName{Namespace: req.Namespace, Name: req.Name}})
		return err
	})
	if err != nil {
		return failure(err)
	}
	return (&abi.ReconcileResponse{RequeueAfterNanos: int64(max(res.RequeueAfter, 0) / time.Nanosecond)}).Marshal()
}

// failure encodes a failed reconcile. A recovered panic is flagged (docs/abi.md
// §3.3) so that the host discards this instance, counts a trap and records an
// event, as it would for a panic the guest had not recovered.
func failure(err error) []byte {
	var p *panicError
	panicked := errors.As(err, &p)
	return (&abi.ReconcileResponse{Failed: true, Error: err.Error(), Terminal: IsTerminal(err) && !panicked, Panicked: panicked}).Marshal()
}

// panicError is a panic recovered by protect.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.value, e.stack) }

// protect runs fn and turns a panic into a *panicError.
func protect(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return fn()
}

var registered *Module

// Register makes m the module's reconciler. Call it once, from an init
// function: the host starts the Go runtime (which runs init functions) and then
// calls the exports, never main.
func Register(m Module) {
	if registered != nil {
		panic("wre: Register called twice")
	}
	registered = &m
}
