package host_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/host"
	"github.com/wre-dev/wre/host/reconcile"
	"github.com/wre-dev/wre/host/wasmtest"
)

// slowSpin is a loop of the script guest that runs far longer than the
// timeouts below (about 3 s without loop checks on the development VM,
// BenchmarkGCDuringGuestLoop) and yet ends, so that a test can wait for it
// instead of leaking a goroutine that spins for the rest of the test binary.
const slowSpin = 1_000_000_000

// waitForRunaways waits until the guest code of every abandoned instance of
// rt has returned.
func waitForRunaways(t *testing.T, rt *host.Runtime) {
	t.Helper()
	require.Eventually(t, func() bool { return rt.Runaways() == 0 }, time.Minute, 10*time.Millisecond,
		"the abandoned guest must return once its loop ends")
}

func TestTrustedGuestTimeoutAbandonsTheInstance(t *testing.T) {
	var logs logSink
	h := run(t, script{RequeueCount: true, Steps: []step{
		{Spin: slowSpin, OnlyFor: "slow"},
		{Log: "served after the timeout", OnlyFor: "slow"},
	}}, wasmtest.Options{
		Runtime: host.RuntimeOptions{TrustedGuests: true, Logger: logs.logger()},
		Module:  host.ModuleOptions{ReconcileTimeout: 200 * time.Millisecond},
	})
	t.Cleanup(func() { waitForRunaways(t, h.Runtime) })
	runaways := func() float64 { return testutil.ToFloat64(h.Metrics.Runaways.WithLabelValues("test")) }

	res, err := h.Reconcile(t.Context(), "ns", "fast")
	require.NoError(t, err)
	require.Equal(t, time.Duration(1), res.RequeueAfter, "first reconcile of instance A")
	oneInstance := testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("test"))

	// A guest spinning without loop checks cannot be preempted, so anything
	// that stops the world (a garbage collection: BenchmarkGCDuringGuestLoop)
	// waits until it leaves its loop, and so may this reconcile: how soon it
	// returns is not asserted here but in TestGuestBlockedInAHostCallIsAbortedThere.
	gcPercent := debug.SetGCPercent(-1)
	start := time.Now()
	_, err = h.Reconcile(t.Context(), "ns", "slow")
	t.Logf("the reconcile returned after %v", time.Since(start))
	require.Error(t, err)
	// The reconcile did not wait for the guest: it abandoned the instance.
	assert.NotEmpty(t, logs.find("Guest code still runs after its context ended", `"reconcileID"`, `"object"="ns/slow"`))
	// The same error, metric and event as a timeout with loop checks.
	assert.Contains(t, err.Error(), `module "test": reconcile ns/slow: timeout: module closed with context deadline exceeded`)
	assert.False(t, reconcile.IsTerminal(err), "backoff must apply")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapTimeout)))
	events := h.Events()
	require.Len(t, events, 1)
	assert.Contains(t, events[0], "Warning ReconcileTrapped module test: reconcile failed (timeout)")

	// Instance A is abandoned: the next reconcile gets a fresh one at once.
	res, err = h.Reconcile(t.Context(), "ns", "fast")
	require.NoError(t, err)
	assert.Equal(t, time.Duration(1), res.RequeueAfter, "first reconcile of a fresh instance B, not A's third")
	if h.Runtime.Runaways() == 1 { // A still spins (unless the world stopped until it ended)
		assert.Equal(t, 1.0, runaways())
		assert.Equal(t, 2, h.Module.Instances(), "B and the abandoned A")
		assert.Greater(t, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("test")), oneInstance, "A's memory is held until it returns")
	}

	debug.SetGCPercent(gcPercent)

	// A's loop ends: it is aborted at its next host call and closed.
	waitForRunaways(t, h.Runtime)
	require.Eventually(t, func() bool { return h.Module.Instances() == 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 0.0, runaways())
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.Instances.WithLabelValues("test")))
	assert.InDelta(t, oneInstance, testutil.ToFloat64(h.Metrics.GuestMemory.WithLabelValues("test")), oneInstance/4, "only B's memory remains")
	assert.Empty(t, logs.find("served after the timeout"), "no host call is served after the reconcile ended")
	assert.NotEmpty(t, logs.find("Abandoned instance returned from guest code", "module closed with context deadline exceeded"))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("test", host.TrapTimeout)), "the runaway's end is not a second trap")

	res, err = h.Reconcile(t.Context(), "ns", "fast")
	require.NoError(t, err)
	assert.Equal(t, time.Duration(2), res.RequeueAfter, "B is reused")
}

// TestTrustedGuestRunawayOutlivesItsModule closes the module while its
// abandoned instance still runs: the module's series stay until the instance
// is closed, and are not resurrected afterwards.
func TestTrustedGuestRunawayOutlivesItsModule(t *testing.T) {
	h := run(t, script{}, wasmtest.Options{Runtime: host.RuntimeOptions{TrustedGuests: true}})
	ctx := context.WithoutCancel(t.Context())
	m, err := h.Runtime.NewModule(ctx, h.Compiled, host.ModuleOptions{
		Name: "spinner", Client: h.Client, Primary: configMaps, PrimaryKind: "ConfigMap",
		ReconcileTimeout: 100 * time.Millisecond, Config: mustJSON(t, script{Steps: []step{{Spin: slowSpin}}}),
	})
	require.NoError(t, err)
	t.Cleanup(func() { waitForRunaways(t, h.Runtime) })

	gcPercent := debug.SetGCPercent(-1) // see TestTrustedGuestTimeoutAbandonsTheInstance
	_, err = m.Reconcile(t.Context(), reconcile.Request{})
	require.ErrorContains(t, err, "timeout")
	require.NoError(t, m.Close(ctx))
	if h.Runtime.Runaways() == 1 {
		assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.Runaways.WithLabelValues("spinner")), "series live while the instance runs")
	}
	debug.SetGCPercent(gcPercent)
	waitForRunaways(t, h.Runtime)
	require.Eventually(t, func() bool { return testutil.CollectAndCount(h.Metrics.GuestMemory) == 1 }, 10*time.Second, time.Millisecond,
		"only module test's series remain")
	assert.Equal(t, 1, testutil.CollectAndCount(h.Metrics.Runaways))
	assert.Equal(t, 0, m.Instances())
}

// blockingCache holds its first get (the guest's) until release is closed;
// later ones (the host's, for the trap event) are answered at once.
type blockingCache struct {
	first   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (c *blockingCache) Reader(schema.GroupVersionResource) (host.CacheReader, bool) { return c, true }

func (c *blockingCache) Get(ns, name string) (runtime.Object, error) {
	if c.first.CompareAndSwap(false, true) {
		close(c.entered)
		<-c.release
	}
	return configMap(ns, name, nil), nil
}

func (c *blockingCache) List(string, metav1.ListOptions) ([]runtime.Object, string, error) {
	return nil, "", nil
}

// TestGuestBlockedInAHostCallIsAbortedThere shows that a host call that
// outlives its reconcile's context ends the guest when it returns, instead of
// handing the guest an answer: with loop checks (the reconcile waits for the
// call) and without (the reconcile returns at its timeout).
func TestGuestBlockedInAHostCallIsAbortedThere(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(map[bool]string{false: "checked", true: "trusted"}[trusted], func(t *testing.T) {
			var logs logSink
			h := run(t, script{}, wasmtest.Options{Runtime: host.RuntimeOptions{TrustedGuests: trusted, Logger: logs.logger()}})
			ctx := context.WithoutCancel(t.Context())
			cache := &blockingCache{entered: make(chan struct{}), release: make(chan struct{})}
			m, err := h.Runtime.NewModule(ctx, h.Compiled, host.ModuleOptions{
				Name: "blocked", Client: h.Client, Cache: cache, Primary: configMaps, PrimaryKind: "ConfigMap",
				Permissions:      host.Permissions{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}},
				ReconcileTimeout: 100 * time.Millisecond,
				Config:           mustJSON(t, script{Steps: []step{{Op: abi.OpGet, Req: cmReq("$ns", "$name")}, {Log: "answered"}}}),
			})
			require.NoError(t, err)
			defer m.Close(ctx)

			errc := make(chan error, 1)
			go func() {
				_, err := m.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}})
				errc <- err
			}()
			select {
			case <-cache.entered:
			case err := <-errc:
				t.Fatalf("the reconcile ended before its get: %v", err)
			}
			if trusted {
				err = <-errc // returns at its timeout although the call still blocks
				assert.Equal(t, 1, h.Runtime.Runaways())
				close(cache.release)
				waitForRunaways(t, h.Runtime)
			} else {
				time.Sleep(200 * time.Millisecond) // past the timeout
				close(cache.release)
				err = <-errc
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "timeout: module closed with context deadline exceeded")
			assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.GuestTraps.WithLabelValues("blocked", host.TrapTimeout)))
			assert.Equal(t, 1.0, testutil.ToFloat64(h.Metrics.HostCalls.WithLabelValues("blocked", "get", "200")), "the call was counted")
			require.Eventually(t, func() bool { return m.Instances() == 0 }, 10*time.Second, time.Millisecond)
			assert.Empty(t, logs.find("answered"), "the guest never ran past the call")
		})
	}
}

// longLoop is a hand-written wre_reconcile body that counts its first
// parameter up until it wraps to 0 (about 4·10⁹ iterations, seconds without
// loop checks) and returns 0: it compiles in milliseconds, and if loop checks
// were missing it would end the test with a wrong result instead of hanging.
var longLoop = []byte{
	0x03, 0x40, // loop
	0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x00, // local.get 0; i32.const 1; i32.add; local.tee 0
	0x0d, 0x00, // br_if 0
	0x0b,       // end
	0x42, 0x00, // i64.const 0
}

// TestCheckedAndTrustedCodeNeverShareACache compiles a module in one mode, then
// in the other on the same CacheDir: each mode compiles into its own
// subdirectory, and a checked runtime still stops the loop after a trusted one
// cached the module.
func TestCheckedAndTrustedCodeNeverShareACache(t *testing.T) {
	ctx := context.WithoutCancel(t.Context())
	dir := t.TempDir()
	wasm := wasmModule(true, nil, abiFuncs(abi.MarkerV1, longLoop))
	entries := func(sub string) int {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "wazero-*", "*"))
		return len(files)
	}
	compile := func(trusted bool) (*host.Runtime, *host.CompiledModule) {
		rt, err := host.NewRuntime(ctx, host.RuntimeOptions{CacheDir: dir, TrustedGuests: trusted})
		require.NoError(t, err)
		t.Cleanup(func() { _ = rt.Close(ctx) })
		c, err := rt.Compile(ctx, "loop", wasm)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(ctx) })
		return rt, c
	}

	compile(true)
	assert.Equal(t, 1, entries("unchecked"), "trusted code is cached under unchecked/")
	assert.Equal(t, 0, entries("checked"))
	_, err := os.Stat(filepath.Join(dir, "checked"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the trusted runtime never touches checked/")

	rt, c := compile(false)
	assert.Equal(t, 1, entries("checked"), "the checked runtime compiled anew instead of loading trusted code")
	m, err := rt.NewModule(ctx, c, host.ModuleOptions{Name: "loop", Client: fakeClient(), Primary: configMaps, PrimaryKind: "ConfigMap",
		ReconcileTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer m.Close(ctx)
	start := time.Now()
	_, err = m.Reconcile(t.Context(), reconcile.Request{})
	require.Error(t, err, "the loop checks stop the guest")
	assert.Contains(t, err.Error(), "timeout")
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, 0, rt.Runaways())

	// A second checked runtime loads the checked entry; the trusted one keeps its own.
	compile(false)
	compile(true)
	assert.Equal(t, 1, entries("checked"))
	assert.Equal(t, 1, entries("unchecked"))
}
