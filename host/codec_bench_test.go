package host

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// BenchmarkWriteBody measures what the host adds to a write of a Deployment
// that a guest sends as protobuf: the dynamic client path decodes it into
// unstructured and serializes JSON for the API server; a typed protobuf REST
// path would only prepend the 4-byte "k8s\x00" envelope and a runtime.Unknown
// header (not implemented: measured as the lower bound, a copy).
func BenchmarkWriteBody(b *testing.B) {
	replicas := int32(3)
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}}},
	}
	body, err := d.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	gvk := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	b.Run("path=dynamic-json", func(b *testing.B) {
		for b.Loop() {
			u, err := defaultCodec.decode(abi.ContentTypeProtobuf, body, gvk)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(u.Object); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("path=protobuf-passthrough", func(b *testing.B) {
		for b.Loop() {
			out := make([]byte, 0, len(body)+64)
			_ = append(append(out, "k8s\x00"...), body...)
		}
	})
}
