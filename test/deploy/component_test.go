package deploy

import (
	"bytes"
	"encoding/json"
	"testing"

	monv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// strict decodes o into out, failing on fields the type does not have: the
// monitoring.coreos.com CRDs are not installed on the test control plane, so
// the operator's Go types stand in for their schemas.
func strict(t *testing.T, o *unstructured.Unstructured, out any) {
	t.Helper()
	data, err := json.Marshal(o.Object)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(out), "%s/%s", o.GetKind(), o.GetName())
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the rendered manifests", kind, name)
	return nil
}

func TestPrometheusOperatorComponent(t *testing.T) {
	objs := render(t, "deploy/base", "deploy/components/prometheus-operator")

	var sm monv1.ServiceMonitor
	strict(t, find(t, objs, "ServiceMonitor", "wre"), &sm)
	var svc corev1.Service
	get(t, objs, "Service", "wre-metrics", &svc)

	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(labels.Set(svc.Labels)), "the ServiceMonitor selects wre-metrics")
	assert.Contains(t, sm.Spec.NamespaceSelector.MatchNames, svc.Namespace)
	assert.Equal(t, "wre", svc.Labels[sm.Spec.JobLabel], "job label value, which the alerts select on")
	require.Len(t, sm.Spec.Endpoints, 1)
	assert.Equal(t, svc.Spec.Ports[0].Name, sm.Spec.Endpoints[0].Port)

	var pr monv1.PrometheusRule
	strict(t, find(t, objs, "PrometheusRule", "wre"), &pr)
	require.NotEmpty(t, pr.Spec.Groups)
	alerts := 0
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts++
				assert.NotEmpty(t, r.Annotations["runbook_url"], r.Alert)
			}
		}
	}
	assert.Equal(t, 8, alerts)
}
