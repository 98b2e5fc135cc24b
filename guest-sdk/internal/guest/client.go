package guest

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/client"
)

// Client implements client.Client over a Caller.
type Client struct {
	caller Caller
	scheme *runtime.Scheme
	mapper *client.Mapper
}

var _ client.Client = (*Client)(nil)

// NewClient returns a client that maps Go types to kinds with scheme and kinds
// to resources with mapper.
func NewClient(c Caller, scheme *runtime.Scheme, mapper *client.Mapper) *Client {
	return &Client{caller: c, scheme: scheme, mapper: mapper}
}

// Scheme implements client.Client.
func (c *Client) Scheme() *runtime.Scheme { return c.scheme }

// GVKFor returns the kind of obj: from the scheme, or from the object itself
// for unstructured objects.
func (c *Client) GVKFor(obj runtime.Object) (schema.GroupVersionKind, error) {
	if _, ok := obj.(runtime.Unstructured); ok {
		gvk := obj.GetObjectKind().GroupVersionKind()
		if gvk.Kind == "" || gvk.Version == "" {
			return gvk, fmt.Errorf("unstructured object without apiVersion or kind")
		}
		return gvk, nil
	}
	gvks, _, err := c.scheme.ObjectKinds(obj)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("kind of %T: %w (add the type to the module's scheme)", obj, err)
	}
	if len(gvks) != 1 {
		return schema.GroupVersionKind{}, fmt.Errorf("kind of %T: ambiguous, registered as %v", obj, gvks)
	}
	return gvks[0], nil
}

// request returns a request naming the object ns/name of kind gvk.
func (c *Client) request(gvk schema.GroupVersionKind, ns, name string) abi.Request {
	gvr := c.mapper.ResourceFor(gvk)
	return abi.Request{
		Group: gvk.Group, Version: gvk.Version, Resource: gvr.Resource, Kind: gvk.Kind,
		Namespace: ns, Name: name,
	}
}

// Get implements client.Client.
func (c *Client) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	gvk, err := c.GVKFor(obj)
	if err != nil {
		return err
	}
	req := c.request(gvk, key.Namespace, key.Name)
	req.Live = client.ApplyGetOptions(opts).Live
	req.Accept = ContentType(obj)
	resp, err := Call(c.caller, abi.OpGet, &req)
	if err != nil {
		return err
	}
	return Decode(resp.ContentType, resp.Body, obj, gvk)
}

// List implements client.Client.
func (c *Client) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	listGVK, err := c.GVKFor(list)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(listGVK.Kind, "List") {
		return fmt.Errorf("list %T: kind %q does not end in List", list, listGVK.Kind)
	}
	gvk := listGVK.GroupVersion().WithKind(strings.TrimSuffix(listGVK.Kind, "List"))
	newItem := func() (runtime.Object, error) { return c.scheme.New(gvk) }
	if _, ok := list.(*unstructured.UnstructuredList); ok {
		newItem = func() (runtime.Object, error) { return &unstructured.Unstructured{}, nil }
	}
	o := client.ApplyListOptions(opts)
	req := c.request(gvk, o.Namespace, "")
	req.LabelSelector, req.FieldSelector = o.LabelSelector, o.FieldSelector
	req.Limit, req.Continue, req.Live = o.Limit, o.Continue, o.Live
	sample, err := newItem()
	if err != nil {
		return fmt.Errorf("list %s: %w", gvk.Kind, err)
	}
	req.Accept = ContentType(sample)
	resp, err := Call(c.caller, abi.OpList, &req)
	if err != nil {
		return err
	}
	items := make([]runtime.Object, len(resp.Items))
	for i, raw := range resp.Items {
		if items[i], err = newItem(); err != nil {
			return err
		}
		if err := Decode(resp.ContentType, raw, items[i], gvk); err != nil {
			return fmt.Errorf("list item %d: %w", i, err)
		}
	}
	if err := meta.SetList(list, items); err != nil {
		return fmt.Errorf("list %s: %w", gvk.Kind, err)
	}
	list.SetContinue(resp.Continue)
	list.SetResourceVersion(resp.ResourceVersion)
	list.GetObjectKind().SetGroupVersionKind(listGVK)
	return nil
}

// Create implements client.Client.
func (c *Client) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	return c.write(ctx, abi.OpCreate, obj, client.ApplyCreateOptions(opts), nil)
}

// Update implements client.Client.
func (c *Client) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return c.write(ctx, abi.OpUpdate, obj, client.ApplyUpdateOptions(opts), nil)
}

// Patch implements client.Client.
func (c *Client) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	return c.write(ctx, abi.OpPatch, obj, client.ApplyPatchOptions(opts), p)
}

// Delete implements client.Client.
func (c *Client) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	return c.write(ctx, abi.OpDelete, obj, client.ApplyDeleteOptions(opts), nil)
}

// Status implements client.Client.
func (c *Client) Status() client.StatusWriter { return statusWriter{c} }

type statusWriter struct{ c *Client }

func (s statusWriter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return s.c.write(ctx, abi.OpStatusUpdate, obj, client.ApplyUpdateOptions(opts), nil)
}

func (s statusWriter) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	return s.c.write(ctx, abi.OpStatusPatch, obj, client.ApplyPatchOptions(opts), p)
}

// write performs a create, update, patch (p != nil) or delete of obj and, except
// for delete, replaces obj by the object the host returns.
func (c *Client) write(ctx context.Context, op abi.Op, obj client.Object, o client.WriteOptions, p client.Patch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	gvk, err := c.GVKFor(obj)
	if err != nil {
		return err
	}
	req := c.request(gvk, obj.GetNamespace(), obj.GetName())
	req.DryRun, req.Force = o.DryRun, o.Force
	if pc := o.Preconditions; pc.UID != nil {
		req.PreconditionUID = string(*pc.UID)
	}
	if pc := o.Preconditions; pc.ResourceVersion != nil {
		req.PreconditionResourceVersion = *pc.ResourceVersion
	}
	req.PropagationPolicy = string(o.PropagationPolicy)
	req.Accept = ContentType(obj)
	switch {
	case p != nil && p.Type() == types.ApplyPatchType && ContentType(obj) == abi.ContentTypeProtobuf:
		// The host turns a protobuf apply configuration into JSON, which spares
		// the guest a slow JSON encoding. Apply refuses managedFields.
		mf := obj.GetManagedFields()
		obj.SetManagedFields(nil)
		req.ContentType, req.Body, err = Encode(obj, gvk)
		obj.SetManagedFields(mf)
		if err != nil {
			return err
		}
		req.PatchType = string(types.ApplyPatchType)
	case p != nil:
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		if req.Body, err = p.Data(obj); err != nil {
			return fmt.Errorf("patch %s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		req.PatchType, req.ContentType = string(p.Type()), string(p.Type())
	case op != abi.OpDelete:
		if req.ContentType, req.Body, err = Encode(obj, gvk); err != nil {
			return err
		}
	}
	resp, err := Call(c.caller, op, &req)
	if err != nil || op == abi.OpDelete {
		return err
	}
	return Decode(resp.ContentType, resp.Body, obj, gvk)
}
