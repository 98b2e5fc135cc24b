package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/sdktest"
)

var key = types.NamespacedName{Namespace: "demo", Name: "w"}

func widget(desired, current string) *Widget {
	return &Widget{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Spec:       WidgetSpec{Desired: desired},
		Status:     WidgetStatus{Current: current, ObservedGeneration: 1},
	}
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name        string
		objs        []client.Object
		wantWrites  int
		wantCurrent string
		wantEvents  int
	}{
		{name: "copies desired into status", objs: []client.Object{widget("blue", "")}, wantWrites: 1, wantCurrent: "blue", wantEvents: 1},
		{name: "changed desired is copied", objs: []client.Object{widget("green", "blue")}, wantWrites: 1, wantCurrent: "green", wantEvents: 1},
		{name: "in sync: no write", objs: []client.Object{widget("blue", "blue")}, wantCurrent: "blue"},
		{name: "gone: nothing to do"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sdktest.New(t, module, sdktest.WithObjects(tt.objs...))
			_, err := env.Reconcile(key)
			require.NoError(t, err)

			writes := env.Writes()
			require.Len(t, writes, tt.wantWrites)
			for _, w := range writes {
				assert.Equal(t, abi.OpStatusUpdate, w.Op)
				assert.Equal(t, abi.ContentTypeJSON, w.ContentType)
			}
			assert.Len(t, env.Events(), tt.wantEvents)
			if len(tt.objs) == 0 {
				return
			}
			var w Widget
			env.MustGet(key, &w)
			assert.Equal(t, tt.wantCurrent, w.Status.Current)
			assert.Equal(t, w.Generation, w.Status.ObservedGeneration)

			// A second reconcile finds everything in sync.
			env.ClearRecords()
			_, err = env.Reconcile(key)
			require.NoError(t, err)
			assert.Empty(t, env.Writes())
		})
	}
}

func TestConflictIsRetried(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(widget("blue", "")))
	env.FailNext(abi.OpStatusUpdate, "widgets",
		apierrors.NewConflict(schema.GroupResource{Group: GroupVersion.Group, Resource: "widgets"}, key.Name, errors.New("modified")))

	_, err := env.Reconcile(key)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "modified")

	_, err = env.Reconcile(key)
	require.NoError(t, err)
	var w Widget
	env.MustGet(key, &w)
	assert.Equal(t, "blue", w.Status.Current)
}

func TestSpecChangeAfterSync(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(widget("blue", "")))
	env.MustReconcile(key)

	var w Widget
	env.MustGet(key, &w)
	w.Spec.Desired = "red"
	require.NoError(t, env.Client().Update(t.Context(), &w))
	require.Equal(t, int64(2), w.Generation)

	env.MustReconcile(key)
	env.MustGet(key, &w)
	assert.Equal(t, "red", w.Status.Current)
	assert.Equal(t, int64(2), w.Status.ObservedGeneration)
}
