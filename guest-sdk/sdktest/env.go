package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/internal/guest"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

// Env is one module running against an in-memory host.
type Env struct {
	t      testing.TB
	scheme *runtime.Scheme
	mapper *client.Mapper
	inst   *wre.Instance
	client *guest.Client
	config []byte
	now    func() time.Time

	mu      sync.Mutex
	objects map[objectKey]*unstructured.Unstructured
	rv      int64
	seq     int64
	current types.NamespacedName // object of the running reconcile
	actions []Action
	events  []Event
	logs    []LogLine
	faults  []fault

	fieldManagers map[schema.GroupVersionKind]*managedfields.FieldManager
}

// Option configures an Env.
type Option func(*Env) error

// WithObjects stores objs before the first reconcile, as the test's own
// fixtures: their status and deletionTimestamp are kept.
func WithObjects(objs ...client.Object) Option {
	return func(e *Env) error {
		for _, o := range objs {
			if err := e.client.Create(context.Background(), o.DeepCopyObject().(client.Object)); err != nil {
				return fmt.Errorf("fixture %s/%s: %w", o.GetNamespace(), o.GetName(), err)
			}
		}
		return nil
	}
}

// WithConfig sets the module configuration: a []byte or string is used as is,
// anything else is encoded as JSON. Defaults to "{}".
func WithConfig(cfg any) Option {
	return func(e *Env) error {
		switch c := cfg.(type) {
		case []byte:
			e.config = c
		case string:
			e.config = []byte(c)
		default:
			b, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("config: %w", err)
			}
			e.config = b
		}
		return nil
	}
}

// WithClock sets the clock of creation and deletion timestamps. Defaults to
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(e *Env) error { e.now = now; return nil }
}

// New returns an Env running m. It fails t if m or an option is invalid.
func New(t testing.TB, m wre.Module, opts ...Option) *Env {
	t.Helper()
	e := &Env{
		t:       t,
		scheme:  m.Scheme,
		mapper:  m.Mapper(),
		config:  []byte("{}"),
		now:     time.Now,
		objects: map[objectKey]*unstructured.Unstructured{},

		fieldManagers: map[schema.GroupVersionKind]*managedfields.FieldManager{},
	}
	inst, err := m.Instantiate(moduleCaller{e})
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	e.inst = inst
	e.client = guest.NewClient(testCaller{e}, m.Scheme, e.mapper)
	for _, o := range opts {
		if err := o(e); err != nil {
			t.Fatalf("sdktest: %v", err)
		}
	}
	return e
}

// Reconcile runs one reconcile of the object named by key, as the host would.
// A failed reconcile returns an error for which wre.IsTerminal tells whether
// the module marked it terminal.
func (e *Env) Reconcile(key types.NamespacedName) (wre.Result, error) {
	e.mu.Lock()
	e.seq++
	id := fmt.Sprintf("reconcile-%d", e.seq)
	e.current = key
	e.mu.Unlock()
	raw := e.inst.Reconcile((&abi.ReconcileRequest{Namespace: key.Namespace, Name: key.Name, ReconcileID: id}).Marshal())
	var resp abi.ReconcileResponse
	if err := resp.Unmarshal(raw); err != nil {
		return wre.Result{}, fmt.Errorf("sdktest: decode reconcile response: %w", err)
	}
	if resp.Failed {
		err := errors.New(resp.Error)
		if resp.Terminal {
			err = wre.TerminalError(err)
		}
		return wre.Result{}, err
	}
	return wre.Result{RequeueAfter: time.Duration(resp.RequeueAfterNanos)}, nil
}

// MustReconcile is Reconcile that fails the test on error.
func (e *Env) MustReconcile(key types.NamespacedName) wre.Result {
	e.t.Helper()
	res, err := e.Reconcile(key)
	if err != nil {
		e.t.Fatalf("reconcile %s: %v", key, err)
	}
	return res
}

// Client returns a client on the in-memory host for the test itself: to read
// what the module wrote, and to change objects as users and other controllers
// would. Its calls are not recorded and keep the status they are given.
func (e *Env) Client() client.Client { return e.client }

// MustGet reads the object named by key into obj, failing the test if it does
// not exist.
func (e *Env) MustGet(key types.NamespacedName, obj client.Object) {
	e.t.Helper()
	if err := e.client.Get(context.Background(), key, obj); err != nil {
		e.t.Fatalf("get %s: %v", key, err)
	}
}

// FailNext makes the next module call of op on resource ("" for any) fail with
// err, which should be an API error such as apierrors.NewConflict(…). Calls
// queue up in order.
func (e *Env) FailNext(op abi.Op, resource string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, fault{op: op, resource: resource, err: err})
}

// Actions returns every host call the module made, in order.
func (e *Env) Actions() []Action {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Action(nil), e.actions...)
}

// Writes returns the module's creates, updates, patches and deletes (status
// writes included), in order.
func (e *Env) Writes() []Action {
	var w []Action
	for _, a := range e.Actions() {
		if a.IsWrite() {
			w = append(w, a)
		}
	}
	return w
}

// Events returns the events the module recorded, in order.
func (e *Env) Events() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.events...)
}

// Logs returns the module's log lines, in order.
func (e *Env) Logs() []LogLine {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]LogLine(nil), e.logs...)
}

// ClearRecords forgets recorded actions, events and logs, so that the next
// reconcile can be checked on its own.
func (e *Env) ClearRecords() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.actions, e.events, e.logs = nil, nil, nil
}

// Action is one host call of the module.
type Action struct {
	Op        abi.Op
	Group     string
	Resource  string
	Namespace string
	Name      string
	// PatchType is set for patches.
	PatchType string
	// Body is the object or patch sent, in ContentType.
	Body        []byte
	ContentType string
	// Code is the status code the host answered.
	Code int32
}

// IsWrite reports whether a is a create, update, patch or delete.
func (a Action) IsWrite() bool {
	switch a.Op {
	case abi.OpCreate, abi.OpUpdate, abi.OpPatch, abi.OpDelete, abi.OpStatusUpdate, abi.OpStatusPatch:
		return true
	}
	return false
}

// String returns "op resource namespace/name", e.g. "patch deployments ns/app".
func (a Action) String() string {
	return fmt.Sprintf("%s %s %s", a.Op, a.Resource, types.NamespacedName{Namespace: a.Namespace, Name: a.Name})
}

// Event is a Kubernetes Event the module recorded.
type Event struct {
	Resource  string
	Namespace string
	Name      string
	Type      string
	Reason    string
	Message   string
}

// LogLine is one line the module logged.
type LogLine struct {
	Level   abi.Level
	Message string
}

type fault struct {
	op       abi.Op
	resource string
	err      error
}

// moduleCaller carries the module's calls.
type moduleCaller struct{ e *Env }

func (c moduleCaller) Call(op abi.Op, req []byte) ([]byte, error) {
	return c.e.call(op, req, true), nil
}

func (c moduleCaller) Log(level abi.Level, msg []byte) {
	c.e.mu.Lock()
	c.e.logs = append(c.e.logs, LogLine{Level: level, Message: string(msg)})
	c.e.mu.Unlock()
	c.e.t.Logf("module log [%d]: %s", level, msg)
}

// testCaller carries the test's own calls.
type testCaller struct{ e *Env }

func (c testCaller) Call(op abi.Op, req []byte) ([]byte, error) { return c.e.call(op, req, false), nil }

func (c testCaller) Log(level abi.Level, msg []byte) { c.e.t.Logf("[%d] %s", level, msg) }
