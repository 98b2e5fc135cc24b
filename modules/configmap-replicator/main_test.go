package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/sdktest"
)

var srcKey = types.NamespacedName{Namespace: "src", Name: "settings"}

func source(targets string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: srcKey.Namespace, Name: srcKey.Name,
			Labels:      map[string]string{"team": "a"},
			Annotations: map[string]string{AnnotationReplicateTo: targets},
		},
		Data: data,
	}
}

// copies returns the data of every copy of the source, by namespace.
func copies(t *testing.T, env *sdktest.Env) map[string]map[string]string {
	t.Helper()
	var l corev1.ConfigMapList
	require.NoError(t, env.Client().List(t.Context(), &l, client.MatchingLabels{LabelReplicaOfNamespace: "src", LabelReplicaOfName: "settings"}))
	out := map[string]map[string]string{}
	for _, c := range l.Items {
		out[c.Namespace] = c.Data
		assert.Equal(t, "a", c.Labels["team"], "copies keep the source's labels")
		assert.Empty(t, c.Annotations, "copies must not replicate themselves")
	}
	return out
}

func TestReplicate(t *testing.T) {
	data := map[string]string{"k": "v"}
	tests := []struct {
		name   string
		objs   []client.Object
		change func(t *testing.T, env *sdktest.Env)
		want   map[string]map[string]string
		events []string
	}{
		{
			name:   "copies into each target once, not into its own namespace",
			objs:   []client.Object{source(" a,b ,a,src,", data)},
			want:   map[string]map[string]string{"a": data, "b": data},
			events: []string{"Replicated", "Replicated"},
		},
		{
			name: "source changes reach the copies",
			objs: []client.Object{source("a", data)},
			change: func(t *testing.T, env *sdktest.Env) {
				var src corev1.ConfigMap
				env.MustGet(srcKey, &src)
				src.Data = map[string]string{"k": "w"}
				require.NoError(t, env.Client().Update(t.Context(), &src))
			},
			want:   map[string]map[string]string{"a": {"k": "w"}},
			events: []string{"Replicated"},
		},
		{
			name: "a namespace dropped from the annotation loses its copy",
			objs: []client.Object{source("a,b", data)},
			change: func(t *testing.T, env *sdktest.Env) {
				var src corev1.ConfigMap
				env.MustGet(srcKey, &src)
				src.Annotations[AnnotationReplicateTo] = "b"
				require.NoError(t, env.Client().Update(t.Context(), &src))
			},
			want:   map[string]map[string]string{"b": data},
			events: []string{"Replicated", "Replicated"},
		},
		{
			name: "a foreign ConfigMap in a target is left alone",
			objs: []client.Object{
				source("a", data),
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "settings"}, Data: map[string]string{"mine": "1"}},
			},
			want:   map[string]map[string]string{},
			events: []string{"TargetExists"},
		},
		{
			name: "a copy edited by hand is repaired through the copy's own reconcile",
			objs: []client.Object{source("a", data)},
			change: func(t *testing.T, env *sdktest.Env) {
				var c corev1.ConfigMap
				env.MustGet(types.NamespacedName{Namespace: "a", Name: "settings"}, &c)
				c.Data["k"] = "tampered"
				require.NoError(t, env.Client().Update(t.Context(), &c))
				env.MustReconcile(client.ObjectKeyFromObject(&c))
			},
			want:   map[string]map[string]string{"a": data},
			events: []string{"Replicated"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sdktest.New(t, module, sdktest.WithObjects(tt.objs...))
			res := env.MustReconcile(srcKey)
			assert.Equal(t, resync, res.RequeueAfter)
			var events []string
			for _, e := range env.Events() {
				events = append(events, e.Reason)
			}
			assert.Equal(t, tt.events, events)
			if tt.change != nil {
				tt.change(t, env)
				env.MustReconcile(srcKey)
			}
			assert.Equal(t, tt.want, copies(t, env))

			var src corev1.ConfigMap
			env.MustGet(srcKey, &src)
			assert.Contains(t, src.Finalizers, Finalizer)
			for _, w := range env.Writes() {
				if w.Op != abi.OpDelete {
					assert.Equal(t, abi.ContentTypeProtobuf, w.ContentType, "write %s", w)
				}
			}
		})
	}
}

func TestSourceDeletionRemovesCopies(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(source("a,b", map[string]string{"k": "v"})))
	env.MustReconcile(srcKey)
	require.Len(t, copies(t, env), 2)

	var src corev1.ConfigMap
	env.MustGet(srcKey, &src)
	require.NoError(t, env.Client().Delete(t.Context(), &src))
	env.MustGet(srcKey, &src)
	require.NotNil(t, src.DeletionTimestamp, "the finalizer holds the source")

	res := env.MustReconcile(srcKey)
	assert.Zero(t, res.RequeueAfter)
	assert.Empty(t, copies(t, env))
	err := env.Client().Get(t.Context(), srcKey, &src)
	assert.True(t, apierrors.IsNotFound(err), "source gone once its finalizer is removed: %v", err)
}

func TestAnnotationRemovedReleasesSource(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(source("a", nil)))
	env.MustReconcile(srcKey)

	var src corev1.ConfigMap
	env.MustGet(srcKey, &src)
	delete(src.Annotations, AnnotationReplicateTo)
	require.NoError(t, env.Client().Update(t.Context(), &src))
	env.MustReconcile(srcKey)

	assert.Empty(t, copies(t, env))
	env.MustGet(srcKey, &src)
	assert.NotContains(t, src.Finalizers, Finalizer)
}

func TestWriteErrorsAreRetried(t *testing.T) {
	env := sdktest.New(t, module, sdktest.WithObjects(source("a,b", map[string]string{"k": "v"})))
	env.FailNext(abi.OpCreate, "configmaps", apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "settings", errors.New("denied")))

	_, err := env.Reconcile(srcKey)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "namespace a")
	assert.Len(t, copies(t, env), 1, "the other namespace is still served")

	env.MustReconcile(srcKey)
	assert.Len(t, copies(t, env), 2)
}

func TestUntouchedConfigMapIsIgnored(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "src", Name: "plain"}}
	env := sdktest.New(t, module, sdktest.WithObjects(cm))
	res := env.MustReconcile(client.ObjectKeyFromObject(cm))
	assert.Zero(t, res.RequeueAfter)
	assert.Empty(t, env.Writes())
}
