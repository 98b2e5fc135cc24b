package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/client"
	"github.com/wre-dev/wre/guest-sdk/sdktest"
	"github.com/wre-dev/wre/guest-sdk/wre"
)

// body is what a test module does in one reconcile.
type body func(ctx context.Context, h *wre.Host, req wre.Request) (wre.Result, error)

func newEnv(t *testing.T, fn body, opts ...sdktest.Option) *sdktest.Env {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, addWidgets} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return sdktest.New(t, wre.Module{Scheme: s, Setup: func(h *wre.Host) (wre.Reconciler, error) {
		return wre.Func(func(ctx context.Context, req wre.Request) (wre.Result, error) { return fn(ctx, h, req) }), nil
	}}, opts...)
}

// runInReconcile runs do inside one reconcile, with objs stored and fault
// (if any) applied first, and returns what do returned.
func runInReconcile(t *testing.T, objs []client.Object, fault func(*sdktest.Env), do func(context.Context, client.Client) error) (*sdktest.Env, error) {
	t.Helper()
	var got error
	env := newEnv(t, func(ctx context.Context, h *wre.Host, _ wre.Request) (wre.Result, error) {
		got = do(ctx, h.Client())
		return wre.Result{}, nil
	}, sdktest.WithObjects(objs...))
	if fault != nil {
		fault(env)
	}
	env.MustReconcile(key)
	return env, got
}

var key = types.NamespacedName{Namespace: "ns", Name: "a"}

// to returns a pointer to v; the SDK's module needs no k8s.io/utils for it.
func to[T any](v T) *T { return &v }

func configMap(name string, data map[string]string, lbls map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: lbls}, Data: data}
}

func widget(desired string) *Widget {
	return &Widget{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: WidgetSpec{Desired: desired}}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name  string
		objs  []client.Object
		fault func(*sdktest.Env)
		do    func(ctx context.Context, c client.Client) error
		is    func(error) bool
	}{
		{
			name: "get missing is NotFound",
			do:   func(ctx context.Context, c client.Client) error { return c.Get(ctx, key, &corev1.ConfigMap{}) },
			is:   apierrors.IsNotFound,
		},
		{
			name: "create existing is AlreadyExists",
			objs: []client.Object{configMap("a", nil, nil)},
			do:   func(ctx context.Context, c client.Client) error { return c.Create(ctx, configMap("a", nil, nil)) },
			is:   apierrors.IsAlreadyExists,
		},
		{
			name: "stale update is Conflict",
			objs: []client.Object{configMap("a", nil, nil)},
			do: func(ctx context.Context, c client.Client) error {
				cm := configMap("a", nil, nil)
				cm.ResourceVersion = "999"
				return c.Update(ctx, cm)
			},
			is: apierrors.IsConflict,
		},
		{
			name: "injected Forbidden",
			fault: func(e *sdktest.Env) {
				e.FailNext(abi.OpList, "configmaps", apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "", errors.New("no")))
			},
			do: func(ctx context.Context, c client.Client) error { return c.List(ctx, &corev1.ConfigMapList{}) },
			is: apierrors.IsForbidden,
		},
		{
			name: "delete with wrong UID precondition is Conflict",
			objs: []client.Object{configMap("a", nil, nil)},
			do: func(ctx context.Context, c client.Client) error {
				return c.Delete(ctx, configMap("a", nil, nil), client.Preconditions{UID: to(types.UID("other"))})
			},
			is: apierrors.IsConflict,
		},
		{
			name: "strategic merge patch of a custom resource is unsupported",
			objs: []client.Object{widget("x")},
			do: func(ctx context.Context, c client.Client) error {
				return c.Patch(ctx, widget("x"), client.RawPatch(types.StrategicMergePatchType, []byte(`{}`)))
			},
			is: apierrors.IsUnsupportedMediaType,
		},
		{
			name: "failing json patch test is Invalid",
			objs: []client.Object{configMap("a", map[string]string{"k": "v"}, nil)},
			do: func(ctx context.Context, c client.Client) error {
				return c.Patch(ctx, configMap("a", nil, nil), client.RawPatch(types.JSONPatchType, []byte(`[{"op":"test","path":"/data/k","value":"w"}]`)))
			},
			is: apierrors.IsInvalid,
		},
		{
			name: "type missing from the scheme",
			do:   func(ctx context.Context, c client.Client) error { return c.Get(ctx, key, &batchv1.Job{}) },
			is:   func(err error) bool { return err != nil && strings.Contains(err.Error(), "scheme") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := runInReconcile(t, tt.objs, tt.fault, tt.do)
			if !tt.is(got) {
				t.Fatalf("unexpected error %v (%T)", got, got)
			}
		})
	}
}

func TestReadWrite(t *testing.T) {
	tests := []struct {
		name  string
		objs  []client.Object
		do    func(ctx context.Context, c client.Client) error
		check func(t *testing.T, env *sdktest.Env)
	}{
		{
			name: "create sends protobuf for built-in types and sets bookkeeping",
			do: func(ctx context.Context, c client.Client) error {
				cm := configMap("a", map[string]string{"k": "v"}, nil)
				if err := c.Create(ctx, cm); err != nil {
					return err
				}
				if cm.UID == "" || cm.ResourceVersion == "" || cm.Kind != "ConfigMap" {
					return errors.New("created object not returned: " + cm.String())
				}
				return nil
			},
			check: func(t *testing.T, env *sdktest.Env) {
				w := env.Writes()
				if len(w) != 1 || w[0].ContentType != abi.ContentTypeProtobuf || w[0].Resource != "configmaps" || w[0].Code != 201 {
					t.Fatalf("writes = %+v", w)
				}
				var cm corev1.ConfigMap
				env.MustGet(key, &cm)
				if cm.Data["k"] != "v" {
					t.Fatalf("stored %v", cm.Data)
				}
			},
		},
		{
			name: "custom resources travel as JSON; status is a subresource",
			objs: []client.Object{widget("x")},
			do: func(ctx context.Context, c client.Client) error {
				w := &Widget{}
				if err := c.Get(ctx, key, w); err != nil {
					return err
				}
				if w.Spec.Desired != "x" || w.Generation != 1 {
					return errors.New("bad get")
				}
				w.Status.Current = "ignored"
				w.Spec.Desired = "y"
				if err := c.Update(ctx, w); err != nil {
					return err
				}
				if w.Status.Current != "" || w.Generation != 2 {
					return errors.New("update must ignore status and bump generation")
				}
				w.Status.Current = "y"
				w.Spec.Desired = "ignored"
				return c.Status().Update(ctx, w)
			},
			check: func(t *testing.T, env *sdktest.Env) {
				var w Widget
				env.MustGet(key, &w)
				if w.Spec.Desired != "y" || w.Status.Current != "y" || w.Generation != 2 {
					t.Fatalf("stored %+v", w)
				}
				if ct := env.Writes()[0].ContentType; ct != abi.ContentTypeJSON {
					t.Fatalf("content type %q", ct)
				}
			},
		},
		{
			name: "list filters by namespace and labels and pages",
			objs: []client.Object{
				configMap("a", nil, map[string]string{"app": "x"}),
				configMap("b", nil, map[string]string{"app": "x"}),
				configMap("c", nil, map[string]string{"app": "y"}),
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "d", Labels: map[string]string{"app": "x"}}},
			},
			do: func(ctx context.Context, c client.Client) error {
				var names []string
				var l corev1.ConfigMapList
				opts := []client.ListOption{client.InNamespace("ns"), client.MatchingLabels{"app": "x"}, client.Limit(1)}
				for {
					if err := c.List(ctx, &l, opts...); err != nil {
						return err
					}
					for _, i := range l.Items {
						names = append(names, i.Name)
					}
					if l.Continue == "" {
						break
					}
					opts = append(opts, client.Continue(l.Continue))
				}
				if strings.Join(names, ",") != "a,b" {
					return errors.New("listed " + strings.Join(names, ","))
				}
				if err := c.List(ctx, &l, client.MatchingFields{"metadata.name": "d"}); err != nil || len(l.Items) != 1 {
					return errors.New("field selector across namespaces failed")
				}
				var ws WidgetList
				if err := c.List(ctx, &ws); err != nil {
					return err
				}
				u := &unstructured.UnstructuredList{}
				u.SetAPIVersion("v1")
				u.SetKind("ConfigMapList")
				if err := c.List(ctx, u, client.InNamespace("ns")); err != nil {
					return err
				}
				if len(u.Items) != 3 || u.Items[0].GetName() != "a" || u.Items[0].GetKind() != "ConfigMap" {
					return fmt.Errorf("unstructured list: %+v", u.Items)
				}
				return nil
			},
		},
		{
			name: "merge patch from a copy, with optimistic lock",
			objs: []client.Object{configMap("a", map[string]string{"k": "v", "gone": "x"}, nil)},
			do: func(ctx context.Context, c client.Client) error {
				cm := &corev1.ConfigMap{}
				if err := c.Get(ctx, key, cm); err != nil {
					return err
				}
				orig := cm.DeepCopy()
				cm.Data["k"] = "w"
				delete(cm.Data, "gone")
				if err := c.Patch(ctx, cm, client.MergeFromWithOptimisticLock(orig)); err != nil {
					return err
				}
				// orig is stale now: the lock must refuse the same patch.
				if err := c.Patch(ctx, cm, client.MergeFromWithOptimisticLock(orig)); !apierrors.IsConflict(err) {
					return errors.New("stale optimistic lock was accepted")
				}
				return nil
			},
			check: func(t *testing.T, env *sdktest.Env) {
				var cm corev1.ConfigMap
				env.MustGet(key, &cm)
				if len(cm.Data) != 1 || cm.Data["k"] != "w" {
					t.Fatalf("data %v", cm.Data)
				}
				if w := env.Writes()[0]; w.PatchType != string(types.MergePatchType) || !strings.Contains(string(w.Body), `"gone":null`) {
					t.Fatalf("patch %s %s", w.PatchType, w.Body)
				}
			},
		},
		{
			name: "server-side apply creates then merges; strategic merge patch of a built-in",
			do: func(ctx context.Context, c client.Client) error {
				d := &appsv1.Deployment{
					ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"},
					Spec: appsv1.DeploymentSpec{Replicas: to[int32](2), Template: corev1.PodTemplateSpec{
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "img:1"}}}}},
				}
				if err := c.Patch(ctx, d, client.Apply, client.ForceOwnership); err != nil {
					return err
				}
				d.Spec.Template.Spec.Containers[0].Image = "img:2"
				if err := c.Patch(ctx, d, client.Apply, client.ForceOwnership); err != nil {
					return err
				}
				return c.Patch(ctx, d, client.RawPatch(types.StrategicMergePatchType,
					[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"s"}]}}}}`)))
			},
			check: func(t *testing.T, env *sdktest.Env) {
				var d appsv1.Deployment
				env.MustGet(key, &d)
				images := map[string]string{}
				for _, c := range d.Spec.Template.Spec.Containers {
					images[c.Name] = c.Image
				}
				if len(images) != 2 || images["app"] != "img:2" || images["side"] != "s" || *d.Spec.Replicas != 2 || d.Generation != 3 {
					t.Fatalf("images %v generation %d", images, d.Generation)
				}
				if w := env.Writes()[0]; w.PatchType != string(types.ApplyPatchType) || w.ContentType != abi.ContentTypeProtobuf {
					t.Fatalf("apply of a built-in type sent as %s %s", w.PatchType, w.ContentType)
				}
			},
		},
		{
			name: "applying the same configuration twice changes nothing",
			do: func(ctx context.Context, c client.Client) error {
				svc := func() *corev1.Service {
					return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: corev1.ServiceSpec{
						Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
				}
				for range 2 {
					if err := c.Patch(ctx, svc(), client.Apply); err != nil {
						return err
					}
				}
				// Numbers in patches are float64 and in stored objects int64: a
				// test op must still compare them equal.
				return c.Patch(ctx, svc(), client.RawPatch(types.JSONPatchType, []byte(`[{"op":"test","path":"/spec/ports/0/port","value":80}]`)))
			},
			check: func(t *testing.T, env *sdktest.Env) {
				var svc corev1.Service
				env.MustGet(key, &svc)
				if len(svc.Spec.Ports) != 1 || svc.Generation != 1 {
					t.Fatalf("ports %v generation %d", svc.Spec.Ports, svc.Generation)
				}
			},
		},
		{
			name: "server-side apply of a custom resource sends JSON",
			do: func(ctx context.Context, c client.Client) error {
				return c.Patch(ctx, widget("x"), client.Apply)
			},
			check: func(t *testing.T, env *sdktest.Env) {
				var w Widget
				env.MustGet(key, &w)
				if w.Spec.Desired != "x" {
					t.Fatalf("widget %+v", w)
				}
				if a := env.Writes()[0]; a.ContentType != string(types.ApplyPatchType) || !strings.Contains(string(a.Body), `"kind":"Widget"`) {
					t.Fatalf("apply sent as %s: %s", a.ContentType, a.Body)
				}
			},
		},
		{
			name: "server-side apply removes what the manager stopped applying",
			do: func(ctx context.Context, c client.Client) error {
				for _, lbls := range []map[string]string{{"a": "1", "b": "2"}, {"a": "1"}} {
					if err := c.Patch(ctx, configMap("a", nil, lbls), client.Apply); err != nil {
						return err
					}
				}
				return nil
			},
			check: func(t *testing.T, env *sdktest.Env) {
				var cm corev1.ConfigMap
				env.MustGet(key, &cm)
				if len(cm.Labels) != 1 || cm.Labels["a"] != "1" {
					t.Fatalf("labels %v", cm.Labels)
				}
				if len(cm.ManagedFields) != 1 || cm.ManagedFields[0].Manager != sdktest.ModuleFieldManager || cm.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
					t.Fatalf("managed fields %+v", cm.ManagedFields)
				}
			},
		},
		{
			name: "server-side apply of a field another manager owns is a Conflict without force",
			objs: []client.Object{configMap("a", map[string]string{"k": "theirs"}, nil)},
			do: func(ctx context.Context, c client.Client) error {
				err := c.Patch(ctx, configMap("a", map[string]string{"k": "mine"}, nil), client.Apply)
				if !apierrors.IsConflict(err) {
					return fmt.Errorf("apply without force: %v", err)
				}
				return c.Patch(ctx, configMap("a", map[string]string{"k": "mine"}, nil), client.Apply, client.ForceOwnership)
			},
			check: func(t *testing.T, env *sdktest.Env) {
				var cm corev1.ConfigMap
				env.MustGet(key, &cm)
				if cm.Data["k"] != "mine" {
					t.Fatalf("data %v", cm.Data)
				}
			},
		},
		{
			name: "json patch",
			objs: []client.Object{configMap("a", map[string]string{"k": "v"}, nil)},
			do: func(ctx context.Context, c client.Client) error {
				return c.Patch(ctx, configMap("a", nil, nil), client.RawPatch(types.JSONPatchType,
					[]byte(`[{"op":"test","path":"/data/k","value":"v"},{"op":"add","path":"/data/n","value":"1"},{"op":"remove","path":"/data/k"}]`)))
			},
			check: func(t *testing.T, env *sdktest.Env) {
				var cm corev1.ConfigMap
				env.MustGet(key, &cm)
				if len(cm.Data) != 1 || cm.Data["n"] != "1" {
					t.Fatalf("data %v", cm.Data)
				}
			},
		},
		{
			name: "finalizers hold deletion; owned objects are collected",
			objs: []client.Object{
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "owner", Finalizers: []string{"f"}}},
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "child", OwnerReferences: []metav1.OwnerReference{{UID: "owner", Name: "a", Kind: "ConfigMap", APIVersion: "v1"}}}},
			},
			do: func(ctx context.Context, c client.Client) error {
				cm := &corev1.ConfigMap{}
				if err := c.Get(ctx, key, cm); err != nil {
					return err
				}
				if err := c.Delete(ctx, cm, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
					return err
				}
				if err := c.Get(ctx, key, cm); err != nil || cm.DeletionTimestamp == nil {
					return errors.New("object with finalizer must stay, marked deleted")
				}
				cm.Finalizers = nil
				if err := c.Update(ctx, cm); err != nil {
					return err
				}
				if err := c.Get(ctx, key, cm); !apierrors.IsNotFound(err) {
					return errors.New("object must go with its last finalizer")
				}
				return nil
			},
			check: func(t *testing.T, env *sdktest.Env) {
				err := env.Client().Get(t.Context(), types.NamespacedName{Namespace: "ns", Name: "child"}, &corev1.ConfigMap{})
				if !apierrors.IsNotFound(err) {
					t.Fatalf("dependent not collected: %v", err)
				}
			},
		},
		{
			name: "dry run does not persist",
			do: func(ctx context.Context, c client.Client) error {
				return c.Create(ctx, configMap("a", nil, nil), client.DryRunAll)
			},
			check: func(t *testing.T, env *sdktest.Env) {
				if err := env.Client().Get(t.Context(), key, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
					t.Fatalf("dry run persisted: %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, got := runInReconcile(t, tt.objs, nil, tt.do)
			if got != nil {
				t.Fatal(got)
			}
			if tt.check != nil {
				tt.check(t, env)
			}
		})
	}
}

func TestReconcileOutcome(t *testing.T) {
	tests := []struct {
		name     string
		fn       body
		terminal bool
		errPart  string
		requeue  time.Duration
	}{
		{name: "requeue", fn: func(context.Context, *wre.Host, wre.Request) (wre.Result, error) {
			return wre.Result{RequeueAfter: time.Minute}, nil
		}, requeue: time.Minute},
		{name: "error wins over result", fn: func(context.Context, *wre.Host, wre.Request) (wre.Result, error) {
			return wre.Result{RequeueAfter: time.Minute}, errors.New("boom")
		}, errPart: "boom"},
		{name: "terminal", fn: func(context.Context, *wre.Host, wre.Request) (wre.Result, error) {
			return wre.Result{}, wre.TerminalError(errors.New("bad spec"))
		}, terminal: true, errPart: "bad spec"},
		{name: "panic is a failure", fn: func(context.Context, *wre.Host, wre.Request) (wre.Result, error) {
			panic("oops")
		}, errPart: "panic: oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newEnv(t, tt.fn).Reconcile(key)
			if res.RequeueAfter != tt.requeue {
				t.Errorf("requeue %v, want %v", res.RequeueAfter, tt.requeue)
			}
			if tt.errPart == "" && err != nil || tt.errPart != "" && (err == nil || !strings.Contains(err.Error(), tt.errPart)) {
				t.Errorf("err %v, want one containing %q", err, tt.errPart)
			}
			if wre.IsTerminal(err) != tt.terminal {
				t.Errorf("terminal = %v", wre.IsTerminal(err))
			}
		})
	}
}

func TestEventsLogsConfig(t *testing.T) {
	env := newEnv(t, func(ctx context.Context, h *wre.Host, req wre.Request) (wre.Result, error) {
		var cfg struct{ Greeting string }
		if err := h.DecodeConfig(ctx, &cfg); err != nil {
			return wre.Result{}, err
		}
		if wre.ReconcileID(ctx) == "" {
			return wre.Result{}, errors.New("no reconcile ID")
		}
		w := &Widget{}
		if err := h.Client().Get(ctx, req.NamespacedName, w); err != nil {
			return wre.Result{}, err
		}
		h.Recorder().Eventf(w, corev1.EventTypeNormal, "Greeted", "%s %s", cfg.Greeting, w.Name)
		h.Recorder().Eventf(configMap("missing", nil, nil), corev1.EventTypeWarning, "Lost", "no such object")
		h.Log().WithName("sub").WithValues("widget", w.Name).V(1).Info("done", "desired", w.Spec.Desired)
		return wre.Result{}, nil
	}, sdktest.WithObjects(widget("two words")), sdktest.WithConfig(map[string]string{"Greeting": "hello"}))
	env.MustReconcile(key)

	ev := env.Events()
	if len(ev) != 1 || ev[0] != (sdktest.Event{Resource: "widgets", Namespace: "ns", Name: "a", Type: "Normal", Reason: "Greeted", Message: "hello a"}) {
		t.Fatalf("events %+v", ev)
	}
	var found bool
	for _, l := range env.Logs() {
		if l.Level == abi.LevelDebug && l.Message == `sub: done widget=a desired="two words"` {
			found = true
		}
	}
	if !found {
		t.Fatalf("logs %+v", env.Logs())
	}
	env.ClearRecords()
	if len(env.Actions())+len(env.Events())+len(env.Logs()) != 0 {
		t.Fatal("ClearRecords kept records")
	}
}

func TestFailNextIsConsumedOnce(t *testing.T) {
	var errs []error
	env := newEnv(t, func(ctx context.Context, h *wre.Host, _ wre.Request) (wre.Result, error) {
		cm := &corev1.ConfigMap{}
		if err := h.Client().Get(ctx, key, cm); err != nil {
			return wre.Result{}, err
		}
		errs = append(errs, h.Client().Update(ctx, cm))
		return wre.Result{}, nil
	}, sdktest.WithObjects(configMap("a", nil, nil)))
	env.FailNext(abi.OpUpdate, "", apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "a", errors.New("injected")))
	env.MustReconcile(key)
	env.MustReconcile(key)
	if len(errs) != 2 || !apierrors.IsConflict(errs[0]) || errs[1] != nil {
		t.Fatalf("errors %v", errs)
	}
}
