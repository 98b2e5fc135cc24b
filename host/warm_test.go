package host_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wre-dev/wre/host/wasmtest"
)

func TestWarmKeepsAnIdleInstance(t *testing.T) {
	h := run(t, script{}, wasmtest.Options{})
	require.NoError(t, h.Module.Warm(t.Context()))
	assert.Equal(t, 1, h.Module.Instances())
	// The warm instance serves the next reconcile.
	_, err := h.Reconcile(t.Context(), "ns", "a")
	require.NoError(t, err)
	assert.Equal(t, 1, h.Module.Instances())

	require.NoError(t, h.Module.Close(t.Context()))
	assert.ErrorContains(t, h.Module.Warm(t.Context()), "closed")
}
