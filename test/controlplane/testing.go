package controlplane

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// RunMain starts one control plane for a test package, stores it in *cp, runs
// the tests and stops it again. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(controlplane.RunMain(m, &cp)) }
//
// Progress goes to stderr. An interrupt stops the control plane before exiting.
func RunMain(m *testing.M, cp **ControlPlane) int {
	c, err := Start(context.Background(), Options{Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
		return 1
	}
	*cp = c
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sig; ok {
			_ = c.Stop()
			os.Exit(2)
		}
	}()
	defer func() {
		signal.Stop(sig)
		close(sig)
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "controlplane: stop: %v\n", err)
		}
	}()
	return m.Run()
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace named after the test and deletes it when the
// test ends. Tests isolate themselves from each other this way.
func Namespace(t testing.TB, cp *ControlPlane) string {
	t.Helper()
	client, err := kubernetes.NewForConfig(cp.Config())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("%s-%x", base, suffix)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}
