package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/host/reconcile"
)

func TestTerminalError(t *testing.T) {
	base := errors.New("bad spec")
	tests := []struct {
		name     string
		err      error
		terminal bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"terminal", reconcile.TerminalError(base), true},
		{"wrapped terminal", fmt.Errorf("reconcile: %w", reconcile.TerminalError(base)), true},
		{"terminal of nil", reconcile.TerminalError(nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.terminal, reconcile.IsTerminal(tt.err))
		})
	}
	assert.ErrorIs(t, reconcile.TerminalError(base), base, "terminal error unwraps to its cause")
	assert.Equal(t, "terminal error: bad spec", reconcile.TerminalError(base).Error())
	assert.Equal(t, "terminal error", reconcile.TerminalError(nil).Error())
}

func TestRequestString(t *testing.T) {
	assert.Equal(t, "ns/a", reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}.String())
	assert.Equal(t, "node-1", reconcile.Request{NamespacedName: types.NamespacedName{Name: "node-1"}}.String())
}

func TestFuncAndResult(t *testing.T) {
	called := false
	var r reconcile.Reconciler = reconcile.Func(func(_ context.Context, req reconcile.Request) (reconcile.Result, error) {
		called = true
		return reconcile.Result{RequeueAfter: time.Second}, nil
	})
	res, err := r.Reconcile(t.Context(), reconcile.Request{})
	assert.NoError(t, err)
	assert.True(t, called)
	assert.False(t, res.IsZero())
	assert.True(t, reconcile.Result{}.IsZero())
	assert.Equal(t, "reconciler panicked: boom", (&reconcile.PanicError{Value: "boom"}).Error())
}
