package statussync_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/host/reconcile"
)

// getter is a one-object cache.
type getter struct {
	obj runtime.Object
	err error
}

func (g getter) Get(string, string) (runtime.Object, error) { return g.obj, g.err }

func withStatus(u *unstructured.Unstructured, current string) *unstructured.Unstructured {
	_ = unstructured.SetNestedField(u.Object, current, "status", "current")
	return u
}

// These cases cover the reconciler's decisions; conflicts and the status
// subresource against a real API server are in engine/manager's tests.
func TestReconcile(t *testing.T) {
	gr := statussync.GVR.GroupResource()
	tests := []struct {
		name       string
		cache      getter
		updateErr  error
		wantErr    string
		terminal   bool
		wantUpdate string // status.current written, "" for no write
	}{
		{name: "gone", cache: getter{err: apierrors.NewNotFound(gr, "w")}},
		{name: "cache error", cache: getter{err: errors.New("stopped")}, wantErr: "get widget ns/w: stopped"},
		{name: "wrong type", cache: getter{obj: &metav1.Status{}}, wantErr: "unexpected type", terminal: true},
		{name: "converged", cache: getter{obj: withStatus(statussync.Widget("ns", "w", "blue"), "blue")}},
		{name: "diverged", cache: getter{obj: withStatus(statussync.Widget("ns", "w", "blue"), "red")}, wantUpdate: "blue"},
		{name: "no status yet", cache: getter{obj: statussync.Widget("ns", "w", "green")}, wantUpdate: "green"},
		{
			name: "conflict is retried", cache: getter{obj: statussync.Widget("ns", "w", "blue")},
			updateErr: apierrors.NewConflict(gr, "w", errors.New("stale")), wantErr: "update widget ns/w status", wantUpdate: "blue",
		},
		{
			name: "deleted meanwhile", cache: getter{obj: statussync.Widget("ns", "w", "blue")},
			updateErr: apierrors.NewNotFound(gr, "w"), wantUpdate: "blue",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
			var written string
			client.PrependReactor("update", "widgets", func(a k8stesting.Action) (bool, runtime.Object, error) {
				require.Equal(t, "status", a.GetSubresource())
				u := a.(k8stesting.UpdateAction).GetObject().(*unstructured.Unstructured)
				written, _, _ = unstructured.NestedString(u.Object, "status", "current")
				return true, u, tt.updateErr
			})
			var before runtime.Object
			if tt.cache.obj != nil {
				before = tt.cache.obj.DeepCopyObject()
			}
			r := statussync.New(tt.cache, client)
			_, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "w"}})
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tt.terminal, reconcile.IsTerminal(err))
			assert.Equal(t, tt.wantUpdate, written)
			assert.Equal(t, before, tt.cache.obj, "the cached object is not mutated")
		})
	}
}

func TestCRD(t *testing.T) {
	crd := statussync.CRD()
	assert.Equal(t, "widgets.demo.wre.dev", crd.Name)
	assert.NotNil(t, crd.Spec.Versions[0].Subresources.Status)
	status := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"].Properties
	assert.Equal(t, "integer", status["observedGeneration"].Type, "the status-sync wasm module applies it")
}
