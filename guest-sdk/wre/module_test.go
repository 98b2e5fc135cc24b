package wre

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// configHost answers the config call with resp and counts calls.
type configHost struct {
	resp  abi.Response
	calls int
}

func (h *configHost) Call(op abi.Op, _ []byte) ([]byte, error) {
	h.calls++
	if op != abi.OpConfig {
		return (&abi.Response{Status: abi.Status{Code: 400}}).Marshal(), nil
	}
	return h.resp.Marshal(), nil
}

func (h *configHost) Log(abi.Level, []byte) {}

func reconcileOnce(t *testing.T, inst *Instance, raw []byte) abi.ReconcileResponse {
	t.Helper()
	var resp abi.ReconcileResponse
	if err := resp.Unmarshal(inst.Reconcile(raw)); err != nil {
		t.Fatal(err)
	}
	return resp
}

func request(ns, name, id string) []byte {
	return (&abi.ReconcileRequest{Namespace: ns, Name: name, ReconcileID: id}).Marshal()
}

func TestInstantiateValidates(t *testing.T) {
	setup := func(*Host) (Reconciler, error) { return Func(nil), nil }
	for name, m := range map[string]Module{
		"no scheme": {Setup: setup},
		"no setup":  {Scheme: runtime.NewScheme()},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := m.Instantiate(&configHost{}); err == nil {
				t.Fatal("invalid module accepted")
			}
		})
	}
}

func TestReconcileResponses(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		setup   func(*Host) (Reconciler, error)
		raw     []byte
		want    abi.ReconcileResponse
		errPart string
	}{
		{
			name: "request reaches the reconciler; result is encoded",
			setup: func(*Host) (Reconciler, error) {
				return Func(func(ctx context.Context, req Request) (Result, error) {
					if req.Namespace != "ns" || req.Name != "n" || ReconcileID(ctx) != "id-1" {
						return Result{}, errors.New("bad request " + req.String() + " " + ReconcileID(ctx))
					}
					return Result{RequeueAfter: time.Second}, nil
				}), nil
			},
			raw:  request("ns", "n", "id-1"),
			want: abi.ReconcileResponse{RequeueAfterNanos: int64(time.Second)},
		},
		{
			name: "negative requeue is no requeue",
			setup: func(*Host) (Reconciler, error) {
				return Func(func(context.Context, Request) (Result, error) { return Result{RequeueAfter: -time.Second}, nil }), nil
			},
			raw: request("ns", "n", "x"),
		},
		{
			name:    "setup error fails every reconcile",
			setup:   func(*Host) (Reconciler, error) { return nil, boom },
			raw:     request("ns", "n", "x"),
			want:    abi.ReconcileResponse{Failed: true},
			errPart: "setup: boom",
		},
		{
			name:    "setup without reconciler",
			setup:   func(*Host) (Reconciler, error) { return nil, nil },
			raw:     request("ns", "n", "x"),
			want:    abi.ReconcileResponse{Failed: true},
			errPart: "no reconciler",
		},
		{
			name:    "setup panic",
			setup:   func(*Host) (Reconciler, error) { panic("at setup") },
			raw:     request("ns", "n", "x"),
			want:    abi.ReconcileResponse{Failed: true, Panicked: true},
			errPart: "setup: panic: at setup\ngoroutine ",
		},
		{
			name: "reconcile panic is flagged, never terminal",
			setup: func(*Host) (Reconciler, error) {
				return Func(func(context.Context, Request) (Result, error) {
					panic(TerminalError(errors.New("in reconcile")))
				}), nil
			},
			raw:     request("ns", "n", "x"),
			want:    abi.ReconcileResponse{Failed: true, Panicked: true},
			errPart: "panic: terminal error: in reconcile\ngoroutine ",
		},
		{
			name:    "malformed request",
			setup:   func(*Host) (Reconciler, error) { return Func(nil), nil },
			raw:     []byte{1, 0, 9, 9, 9, 9},
			want:    abi.ReconcileResponse{Failed: true},
			errPart: "decode reconcile request",
		},
		{
			name: "wrapped terminal error",
			setup: func(*Host) (Reconciler, error) {
				return Func(func(context.Context, Request) (Result, error) {
					return Result{}, errors.Join(errors.New("ctx"), TerminalError(boom))
				}), nil
			},
			raw:     request("ns", "n", "x"),
			want:    abi.ReconcileResponse{Failed: true, Terminal: true},
			errPart: "terminal error: boom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setups := 0
			inst, err := Module{Scheme: runtime.NewScheme(), Setup: func(h *Host) (Reconciler, error) {
				setups++
				return tt.setup(h)
			}}.Instantiate(&configHost{})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				got := reconcileOnce(t, inst, tt.raw)
				if !strings.Contains(got.Error, tt.errPart) {
					t.Fatalf("error %q, want it to contain %q", got.Error, tt.errPart)
				}
				got.Error = ""
				if got != tt.want {
					t.Fatalf("response %+v, want %+v", got, tt.want)
				}
			}
			if setups > 1 {
				t.Fatalf("setup ran %d times", setups)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		resp    abi.Response
		want    string
		wantErr func(error) bool
	}{
		{name: "json", resp: abi.Response{Status: abi.Status{Code: 200}, Body: []byte(`{"Greeting":"hi"}`)}, want: "hi"},
		{name: "empty", resp: abi.Response{Status: abi.Status{Code: 200}}},
		{name: "bad json", resp: abi.Response{Status: abi.Status{Code: 200}, Body: []byte(`{`)},
			wantErr: func(err error) bool { return err != nil && strings.Contains(err.Error(), "decode config") }},
		{name: "host error", resp: abi.Response{Status: abi.Status{Code: 403, Reason: "Forbidden"}}, wantErr: apierrors.IsForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := Module{Scheme: runtime.NewScheme(), Setup: func(*Host) (Reconciler, error) { return Func(nil), nil }}.
				Instantiate(&configHost{resp: tt.resp})
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct{ Greeting string }
			err = inst.host.DecodeConfig(t.Context(), &cfg)
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || cfg.Greeting != tt.want {
				t.Fatalf("cfg %+v, err %v", cfg, err)
			}
		})
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() { registered = nil }()
	Register(Module{})
	defer func() {
		if recover() == nil {
			t.Fatal("second Register did not panic")
		}
	}()
	Register(Module{})
}

func TestTerminalError(t *testing.T) {
	err := TerminalError(errors.New("x"))
	if !errors.Is(err, TerminalError(nil)) || !IsTerminal(err) || IsTerminal(errors.New("x")) {
		t.Fatal("terminal detection")
	}
	if TerminalError(nil).Error() != "terminal error" || errors.Unwrap(err).Error() != "x" {
		t.Fatal("terminal message or unwrap")
	}
}
