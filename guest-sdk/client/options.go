package client

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// GetOptions are the settings of a Get.
type GetOptions struct {
	// Live reads from the API server instead of the host's cache.
	Live bool
}

// ListOptions are the settings of a List.
type ListOptions struct {
	// Namespace restricts the list to one namespace; empty means all namespaces
	// the module may read.
	Namespace string
	// LabelSelector and FieldSelector are selectors in their string form.
	LabelSelector string
	FieldSelector string
	// Limit caps the number of items; zero means no limit.
	Limit int64
	// Continue is the token of a previous page.
	Continue string
	// Live reads from the API server instead of the host's cache.
	Live bool
}

// WriteOptions are the settings of Create, Update, Patch and Delete.
type WriteOptions struct {
	// DryRun asks the API server to validate the write without persisting it.
	DryRun bool
	// Force takes ownership of conflicting fields in a server-side apply.
	Force bool
	// Preconditions must hold for a Delete to happen.
	Preconditions metav1.Preconditions
	// PropagationPolicy decides how a Delete treats dependents.
	PropagationPolicy metav1.DeletionPropagation
}

// GetOption changes a Get.
type GetOption interface{ ApplyToGet(*GetOptions) }

// ListOption changes a List.
type ListOption interface{ ApplyToList(*ListOptions) }

// CreateOption changes a Create.
type CreateOption interface{ ApplyToCreate(*WriteOptions) }

// UpdateOption changes an Update.
type UpdateOption interface{ ApplyToUpdate(*WriteOptions) }

// PatchOption changes a Patch.
type PatchOption interface{ ApplyToPatch(*WriteOptions) }

// DeleteOption changes a Delete.
type DeleteOption interface{ ApplyToDelete(*WriteOptions) }

// InNamespace restricts a List to one namespace.
type InNamespace string

// ApplyToList implements ListOption.
func (n InNamespace) ApplyToList(o *ListOptions) { o.Namespace = string(n) }

// MatchingLabels selects objects that carry all these labels.
type MatchingLabels map[string]string

// ApplyToList implements ListOption.
func (m MatchingLabels) ApplyToList(o *ListOptions) {
	o.LabelSelector = labels.SelectorFromSet(labels.Set(m)).String()
}

// MatchingLabelsSelector selects objects whose labels match a selector.
type MatchingLabelsSelector struct{ labels.Selector }

// ApplyToList implements ListOption.
func (m MatchingLabelsSelector) ApplyToList(o *ListOptions) { o.LabelSelector = m.String() }

// MatchingFields selects objects whose fields have these values (for example
// "metadata.name"); the host supports the field selectors the API server does.
type MatchingFields map[string]string

// ApplyToList implements ListOption.
func (m MatchingFields) ApplyToList(o *ListOptions) {
	o.FieldSelector = fields.SelectorFromSet(fields.Set(m)).String()
}

// Limit caps the number of items of a List page.
type Limit int64

// ApplyToList implements ListOption.
func (l Limit) ApplyToList(o *ListOptions) { o.Limit = int64(l) }

// Continue fetches the page after the one that returned this token.
type Continue string

// ApplyToList implements ListOption.
func (c Continue) ApplyToList(o *ListOptions) { o.Continue = string(c) }

type liveRead struct{}

// Live makes a Get or List read from the API server instead of the host's cache.
var Live = liveRead{}

// ApplyToGet implements GetOption.
func (liveRead) ApplyToGet(o *GetOptions) { o.Live = true }

// ApplyToList implements ListOption.
func (liveRead) ApplyToList(o *ListOptions) { o.Live = true }

type dryRunAll struct{}

// DryRunAll makes a write validated by the API server but not persisted.
var DryRunAll = dryRunAll{}

// ApplyToCreate implements CreateOption.
func (dryRunAll) ApplyToCreate(o *WriteOptions) { o.DryRun = true }

// ApplyToUpdate implements UpdateOption.
func (dryRunAll) ApplyToUpdate(o *WriteOptions) { o.DryRun = true }

// ApplyToPatch implements PatchOption.
func (dryRunAll) ApplyToPatch(o *WriteOptions) { o.DryRun = true }

// ApplyToDelete implements DeleteOption.
func (dryRunAll) ApplyToDelete(o *WriteOptions) { o.DryRun = true }

type forceOwnership struct{}

// ForceOwnership makes a server-side apply take over fields other managers own
// instead of failing with a Conflict.
var ForceOwnership = forceOwnership{}

// ApplyToPatch implements PatchOption.
func (forceOwnership) ApplyToPatch(o *WriteOptions) { o.Force = true }

// Preconditions must hold for a Delete to happen (UID and/or resourceVersion).
type Preconditions metav1.Preconditions

// ApplyToDelete implements DeleteOption.
func (p Preconditions) ApplyToDelete(o *WriteOptions) { o.Preconditions = metav1.Preconditions(p) }

// PropagationPolicy decides whether a Delete orphans dependents, deletes them in
// the background or in the foreground.
type PropagationPolicy metav1.DeletionPropagation

// ApplyToDelete implements DeleteOption.
func (p PropagationPolicy) ApplyToDelete(o *WriteOptions) {
	o.PropagationPolicy = metav1.DeletionPropagation(p)
}

// collect folds opts into one options value.
func collect[O, T any](opts []T, apply func(T, *O)) O {
	var o O
	for _, opt := range opts {
		apply(opt, &o)
	}
	return o
}

// ApplyGetOptions returns the settings opts make.
func ApplyGetOptions(opts []GetOption) GetOptions { return collect(opts, GetOption.ApplyToGet) }

// ApplyListOptions returns the settings opts make.
func ApplyListOptions(opts []ListOption) ListOptions { return collect(opts, ListOption.ApplyToList) }

// ApplyCreateOptions returns the settings opts make.
func ApplyCreateOptions(opts []CreateOption) WriteOptions {
	return collect(opts, CreateOption.ApplyToCreate)
}

// ApplyUpdateOptions returns the settings opts make.
func ApplyUpdateOptions(opts []UpdateOption) WriteOptions {
	return collect(opts, UpdateOption.ApplyToUpdate)
}

// ApplyPatchOptions returns the settings opts make.
func ApplyPatchOptions(opts []PatchOption) WriteOptions {
	return collect(opts, PatchOption.ApplyToPatch)
}

// ApplyDeleteOptions returns the settings opts make.
func ApplyDeleteOptions(opts []DeleteOption) WriteOptions {
	return collect(opts, DeleteOption.ApplyToDelete)
}
