package registry

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/wre-dev/wre/engine/modules"
)

// parts reads the ConfigMaps of module name from the API server, sorted by
// name. The registry's informer only says which module changed: its cache
// holds them without the wasm (modules.StripPayload).
func (r *Registry) parts(ctx context.Context, name string) ([]*corev1.ConfigMap, error) {
	list, err := r.opts.Client.CoreV1().ConfigMaps(r.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{modules.LabelModule: name}).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list the ConfigMaps of module %q: %w", name, err)
	}
	cms := make([]*corev1.ConfigMap, len(list.Items))
	for i := range list.Items {
		cms[i] = &list.Items[i]
	}
	slices.SortFunc(cms, func(a, b *corev1.ConfigMap) int { return strings.Compare(a.Name, b.Name) })
	return cms, nil
}

// setKey identifies a set of ConfigMap versions.
func setKey(cms []*corev1.ConfigMap) string {
	var b strings.Builder
	for _, cm := range cms {
		fmt.Fprintf(&b, "%s@%s/%s;", cm.Name, cm.ResourceVersion, cm.UID)
	}
	return b.String()
}

// target is the ConfigMap that carries the events of a module: part 0 when
// there is one, else the first.
func target(cms []*corev1.ConfigMap) *corev1.ConfigMap {
	for _, cm := range cms {
		if cm.Annotations[modules.AnnotationPart] == "0" {
			return cm
		}
	}
	return cms[0]
}
