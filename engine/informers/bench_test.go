package informers

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"

	"github.com/wre-dev/wre/test/benchmem"
)

// BenchmarkCacheFootprint caches 5,000 ConfigMaps of the memory benchmark's
// shape (test/bench, about 300 bytes of data and one label) in one shared
// informer and reports the Go heap each cached object costs, its indexes
// included, measured after a GC; the docs/operations.md sizing guide uses it.
func BenchmarkCacheFootprint(b *testing.B) {
	const objects = 5000
	objs := make([]k8sruntime.Object, objects)
	for i := range objs {
		objs[i] = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", i%10), Name: fmt.Sprintf("cm-%05d", i), Labels: map[string]string{"app": "bench"}},
			Data:       map[string]string{"index": fmt.Sprint(i), "config": strings.Repeat("x", 200), "owner": "memory-benchmark"},
		}
	}
	opts, _ := testOptions(b)
	opts.Typed = k8sfake.NewClientset(objs...)
	var perObject float64
	for b.Loop() {
		r, err := NewRegistry(opts)
		if err != nil {
			b.Fatal(err)
		}
		before, _ := benchmem.Footprint()
		inf, err := r.Acquire(b.Context(), configMapsGVR)
		if err != nil {
			b.Fatal(err)
		}
		if err := inf.WaitForSync(b.Context()); err != nil {
			b.Fatal(err)
		}
		after, _ := benchmem.Footprint()
		perObject = float64(after-before) / objects
		r.Stop()
	}
	b.ReportMetric(perObject, "heap-B/object")
}
