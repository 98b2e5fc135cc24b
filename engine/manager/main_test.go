package manager_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/wre-dev/wre/engine/native/statussync"
	"github.com/wre-dev/wre/test/controlplane"
	"github.com/wre-dev/wre/test/enginetest"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(enginetest.RunMain(m, &cp)) }

var crdOnce sync.Once

// installWidgetCRD installs the Widget CRD once per package.
func installWidgetCRD(t *testing.T) {
	t.Helper()
	crdOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, enginetest.InstallWidgetCRD(ctx, cp.Config()))
	})
}

func dyn(t *testing.T) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(cp.Config())
	require.NoError(t, err)
	return c
}

func createWidget(t *testing.T, ns, name, desired string) {
	t.Helper()
	_, err := dyn(t).Resource(statussync.GVR).Namespace(ns).Create(context.Background(), statussync.Widget(ns, name, desired), metav1.CreateOptions{})
	require.NoError(t, err)
}

func setDesired(t *testing.T, ns, name, desired string) {
	t.Helper()
	require.NoError(t, setDesiredErr(dyn(t), ns, name, desired))
}

// setDesiredErr sets spec.desired, retrying conflicts; it is safe to call from
// any goroutine.
func setDesiredErr(client dynamic.Interface, ns, name, desired string) error {
	for {
		u, err := client.Resource(statussync.GVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := unstructured.SetNestedField(u.Object, desired, "spec", "desired"); err != nil {
			return err
		}
		_, err = client.Resource(statussync.GVR).Namespace(ns).Update(context.Background(), u, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
	}
}

// converged reports whether every Widget in ns has status.current ==
// spec.desired, and how many there are.
func converged(t *testing.T, ns string) (bool, int) {
	list, err := dyn(t).Resource(statussync.GVR).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return false, 0
	}
	for _, u := range list.Items {
		desired, _, _ := unstructured.NestedString(u.Object, "spec", "desired")
		current, _, _ := unstructured.NestedString(u.Object, "status", "current")
		if desired != current {
			return false, len(list.Items)
		}
	}
	return true, len(list.Items)
}

// waitConverged waits until the n Widgets of ns have converged.
func waitConverged(t *testing.T, ns string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		ok, got := converged(t, ns)
		return ok && got == n
	}, 2*time.Minute, 50*time.Millisecond, "widgets in %s converge", ns)
}
