package statussync_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/wre-dev/wre/engine/informers"
	"github.com/wre-dev/wre/engine/native/statussync"
)

func TestFromRegistry(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(statussync.GVR.GroupVersion().WithKind("Widget"), meta.RESTScopeNamespace)
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{statussync.GVR: "WidgetList"}, statussync.Widget("ns", "w", "blue"))
	reg, err := informers.NewRegistry(informers.Options{Typed: kubefake.NewClientset(), Dynamic: client, Mapper: mapper})
	require.NoError(t, err)
	defer reg.Stop()
	get := statussync.FromRegistry(reg)

	_, err = get.Get("ns", "w")
	assert.ErrorIs(t, err, informers.ErrStopped, "no informer: nothing to read")

	inf, err := reg.Acquire(t.Context(), statussync.GVR)
	require.NoError(t, err)
	defer reg.Release(statussync.GVR)
	require.NoError(t, inf.WaitForSync(t.Context()))
	obj, err := get.Get("ns", "w")
	require.NoError(t, err)
	desired, _, _ := unstructured.NestedString(obj.(*unstructured.Unstructured).Object, "spec", "desired")
	assert.Equal(t, "blue", desired)
}
