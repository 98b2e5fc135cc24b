package controlplane_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/wre-dev/wre/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(controlplane.RunMain(m, &cp)) }

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cp.Config())
	require.NoError(t, err)
	return c
}

func TestNamespaceAndConfigMap(t *testing.T) {
	ctx := t.Context()
	client := adminClient(t)
	ns := controlplane.Namespace(t, cp)

	got, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.NamespaceActive, got.Status.Phase)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one", Namespace: ns}, Data: map[string]string{"k": "v"}}
	_, err = client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	require.NoError(t, err)
	list, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=one"})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.Equal(t, "v", list.Items[0].Data["k"])

	require.NoError(t, client.CoreV1().ConfigMaps(ns).Delete(ctx, "one", metav1.DeleteOptions{}))
	_, err = client.CoreV1().ConfigMaps(ns).Get(ctx, "one", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "deleted ConfigMap is gone: %v", err)

	// The namespace controller (kube-controller-manager) finalizes deletion.
	require.NoError(t, client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, time.Minute, 200*time.Millisecond, "namespace %s is finalized and removed", ns)
}

func TestGarbageCollection(t *testing.T) {
	ctx := t.Context()
	client := adminClient(t)
	ns := controlplane.Namespace(t, cp)

	owner, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	child := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "child", Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}},
	}}
	_, err = client.CoreV1().ConfigMaps(ns).Create(ctx, child, metav1.CreateOptions{})
	require.NoError(t, err)

	require.NoError(t, client.CoreV1().ConfigMaps(ns).Delete(ctx, "owner", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "child", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 90*time.Second, 250*time.Millisecond, "the garbage collector deletes the owned child")
}

func TestAPIServerRestartKeepsData(t *testing.T) {
	ctx := t.Context()
	client := adminClient(t)
	ns := controlplane.Namespace(t, cp)
	_, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)

	require.NoError(t, cp.StopAPIServer())
	_, err = client.CoreV1().ConfigMaps(ns).Get(ctx, "survivor", metav1.GetOptions{})
	require.Error(t, err, "API server is down")
	require.NoError(t, cp.StartAPIServer(ctx))

	got, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "survivor", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "survivor", got.Name)

	require.NoError(t, cp.RestartAPIServer(ctx))
	_, err = client.CoreV1().ConfigMaps(ns).Get(ctx, "survivor", metav1.GetOptions{})
	assert.NoError(t, err, "data survives a restart too")
}

func TestEtcdRestartKeepsData(t *testing.T) {
	ctx := t.Context()
	client := adminClient(t)
	ns := controlplane.Namespace(t, cp)
	_, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)

	require.NoError(t, cp.StopEtcd())
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = client.CoreV1().ConfigMaps(ns).Create(short, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "lost", Namespace: ns}}, metav1.CreateOptions{})
	cancel()
	require.Error(t, err, "etcd is down: writes fail")
	require.NoError(t, cp.StartEtcd(ctx))
	assert.Error(t, cp.StartEtcd(ctx), "etcd is already running")

	// The API server reconnects to etcd by itself.
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "survivor", metav1.GetOptions{})
		return err == nil
	}, time.Minute, 100*time.Millisecond, "data survives an etcd restart")
	require.NoError(t, cp.RestartEtcd(ctx))
	require.Eventually(t, func() bool {
		_, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after", Namespace: ns}}, metav1.CreateOptions{})
		return err == nil
	}, time.Minute, 100*time.Millisecond, "writes work again")
}

func TestImpersonationIsBoundByRBAC(t *testing.T) {
	ctx := t.Context()
	ns := controlplane.Namespace(t, cp)
	sa, err := kubernetes.NewForConfig(cp.ServiceAccountConfig(ns, "nobody"))
	require.NoError(t, err)
	_, err = sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "a service account without roles may not list secrets: %v", err)

	// A plain user is bound by RBAC the same way: forbidden until a RoleBinding
	// grants the access.
	admin := adminClient(t)
	alice, err := kubernetes.NewForConfig(cp.ConfigFor("alice"))
	require.NoError(t, err)
	_, err = alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "a user without roles may not list ConfigMaps: %v", err)
	_, err = admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-reads-configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmap-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		assert.NoError(c, err)
	}, 10*time.Second, 100*time.Millisecond, "the RoleBinding lets alice list ConfigMaps in %s", ns)
	_, err = alice.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "only in the bound namespace: %v", err)

	// Admin kubeconfig file works with client-go's loader, as kubectl would use it.
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.KubeconfigPath())
	require.NoError(t, err)
	c, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	_, err = c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	assert.NoError(t, err)

	// A kubeconfig for an impersonated identity carries the impersonation.
	path := t.TempDir() + "/sa.kubeconfig"
	require.NoError(t, cp.WriteKubeconfig(path, cp.ServiceAccountConfig(ns, "nobody")))
	cfg, err = clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:"+ns+":nobody", cfg.Impersonate.UserName)
}

// TestStopLeavesNothing starts a second, private control plane and checks
// that Stop leaves no process, listening port or directory behind.
func TestStopLeavesNothing(t *testing.T) {
	start := time.Now()
	other, err := controlplane.Start(t.Context(), controlplane.Options{})
	require.NoError(t, err)
	t.Logf("second control plane ready in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { _ = other.Stop() })

	pids := other.PIDs()
	require.Len(t, pids, 3, "etcd, kube-apiserver and kube-controller-manager run")
	dir := other.Dir()
	ports := other.Ports()
	require.Len(t, ports, 4)
	for name, port := range ports {
		requireListening(t, name, port)
	}

	// RunMain's signal handler and its deferred Stop may call Stop at once.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { assert.NoError(t, other.Stop()) })
	}
	wg.Wait()
	require.NoError(t, other.Stop(), "Stop is idempotent")

	for _, pid := range pids {
		err := syscall.Kill(pid, 0)
		assert.ErrorIs(t, err, syscall.ESRCH, "process %d is gone", pid)
	}
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "directory %s is removed", dir)
	for name, port := range ports {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			conn.Close()
		}
		assert.Error(t, err, "nothing listens on %s's port %d any more", name, port)
	}
}

func requireListening(t *testing.T, name string, port int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	require.NoError(t, err, "%s listens on %d", name, port)
	conn.Close()
}

func TestDetachedStartAndStop(t *testing.T) {
	dir := t.TempDir() + "/cluster"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	detached, err := controlplane.Start(ctx, controlplane.Options{Dir: dir, Detached: true})
	require.NoError(t, err)
	// Detached components outlive this process: stop them if an assertion fails.
	t.Cleanup(func() { _ = controlplane.StopDetached(dir) })
	pids := detached.PIDs()
	require.Len(t, pids, 3)
	require.FileExists(t, dir+"/state.json")

	require.NoError(t, controlplane.StopDetached(dir))
	for _, pid := range pids {
		require.Eventually(t, func() bool {
			// Detached processes are our children too until reaped; a zombie
			// counts as gone once it no longer runs.
			data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			return err != nil || containsState(string(data), 'Z')
		}, 30*time.Second, 50*time.Millisecond, "process %d stopped", pid)
	}
	assert.NoDirExists(t, dir)
	assert.Error(t, controlplane.StopDetached(dir), "stopping twice names the missing state")
}

// TestStopDetachedStopsRestartedComponents restarts the API server and etcd
// of a detached control plane and puts back a state file that names only the
// processes of the first start, as a restart by a process that did not record
// it leaves: StopDetached stops the restarted ones too.
func TestStopDetachedStopsRestartedComponents(t *testing.T) {
	dir := t.TempDir() + "/cluster"
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	detached, err := controlplane.Start(ctx, controlplane.Options{Dir: dir, Detached: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = controlplane.StopDetached(dir) })
	stale, err := os.ReadFile(dir + "/state.json")
	require.NoError(t, err)
	first := detached.PIDs()

	require.NoError(t, detached.RestartAPIServer(ctx))
	require.NoError(t, detached.RestartEtcd(ctx))
	pids := detached.PIDs()
	require.Len(t, pids, 3)
	assert.NotEqual(t, first, pids, "restarted components have new ids")
	require.NoError(t, os.WriteFile(dir+"/state.json", stale, 0o644))

	require.NoError(t, controlplane.StopDetached(dir))
	for _, pid := range pids {
		require.Eventually(t, func() bool {
			data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			return err != nil || containsState(string(data), 'Z')
		}, 30*time.Second, 50*time.Millisecond, "process %d stopped", pid)
	}
	assert.NoDirExists(t, dir)
}

// containsState reports whether a /proc/PID/stat line has process state s.
func containsState(stat string, s byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' && i+2 < len(stat) {
			return stat[i+2] == s
		}
	}
	return false
}

// TestStopDetachedSparesUnrelatedProcesses records the pid of a process that
// is no component (as after a reboot that reused the pid): StopDetached must
// leave it alone.
func TestStopDetachedSparesUnrelatedProcesses(t *testing.T) {
	sleep := exec.Command("sleep", "30")
	sleep.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group leader, like a component
	require.NoError(t, sleep.Start())
	exited := make(chan struct{})
	go func() { _ = sleep.Wait(); close(exited) }()
	t.Cleanup(func() { _ = sleep.Process.Kill(); <-exited })

	dir := filepath.Join(t.TempDir(), "cluster")
	require.NoError(t, os.Mkdir(dir, 0o755))
	st := fmt.Sprintf(`{"kubeconfig": %q, "server": "https://127.0.0.1:1", "pids": [%d]}`,
		filepath.Join(dir, "kubeconfig"), sleep.Process.Pid)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state.json"), []byte(st), 0o644))

	require.NoError(t, controlplane.StopDetached(dir))
	assert.NoDirExists(t, dir)
	select {
	case <-exited:
		t.Fatalf("StopDetached killed pid %d, which is no component of %s", sleep.Process.Pid, dir)
	case <-time.After(time.Second):
	}
}

// TestStartRetriesOnPortConflict hands the first attempt an API server port
// that another listener holds: Start tries again on new ports.
func TestStartRetriesOnPortConflict(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	heldPort := held.Addr().(*net.TCPAddr).Port
	calls := 0
	t.Cleanup(controlplane.SetFreePorts(func(n int) ([]int, error) {
		calls++
		ports, err := controlplane.FreePorts(n)
		if err == nil && calls == 1 {
			ports[2] = heldPort // etcd client, etcd peer, kube-apiserver, kube-controller-manager
		}
		return ports, err
	}))

	dir := filepath.Join(t.TempDir(), "cluster")
	var log bytes.Buffer
	other, err := controlplane.Start(t.Context(), controlplane.Options{Dir: dir, Log: &log})
	require.NoError(t, err, "log:\n%s", log.String())
	t.Cleanup(func() { _ = other.Stop() })

	assert.Equal(t, 2, calls, "a second attempt picked new ports")
	assert.NotEqual(t, heldPort, other.Ports()["kube-apiserver"])
	assert.Contains(t, log.String(), "kube-apiserver lost its port to another process")
	client, err := kubernetes.NewForConfig(other.Config())
	require.NoError(t, err)
	_, err = client.CoreV1().Namespaces().Get(t.Context(), "kube-system", metav1.GetOptions{})
	assert.NoError(t, err, "the second attempt's control plane serves")

	require.FileExists(t, filepath.Join(dir, "state.json"))
	require.NoError(t, other.Stop())
	assert.NoFileExists(t, filepath.Join(dir, "state.json"), "Stop removes the state from the caller's directory")
	assert.DirExists(t, dir, "and leaves the directory itself")
}

// TestFailedStartLeavesNoState fails Start after the API server wrote
// state.json (the controller manager loses its port, then no new ports come):
// nothing is left running and no state claims otherwise.
func TestFailedStartLeavesNoState(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	var first []int
	t.Cleanup(controlplane.SetFreePorts(func(n int) ([]int, error) {
		if first != nil {
			return nil, errors.New("no ports today")
		}
		ports, err := controlplane.FreePorts(n)
		if err == nil {
			ports[3] = held.Addr().(*net.TCPAddr).Port
			first = ports
		}
		return ports, err
	}))

	dir := filepath.Join(t.TempDir(), "cluster")
	var log bytes.Buffer
	_, err = controlplane.Start(t.Context(), controlplane.Options{Dir: dir, Log: &log})
	require.ErrorContains(t, err, "no ports today")
	assert.Contains(t, log.String(), "kube-controller-manager lost its port to another process")
	assert.NoFileExists(t, filepath.Join(dir, "state.json"), "a failed Start leaves no state (make cluster-up would refuse to start)")
	for _, port := range first[:3] {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			conn.Close()
		}
		assert.Error(t, err, "nothing listens on %d", port)
	}
}
