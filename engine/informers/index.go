package informers

import (
	"maps"

	"k8s.io/client-go/tools/cache"
)

// Index names on every informer's store.
const (
	indexNamespace = cache.NamespaceIndex
	indexOwner     = "wre/owner-uid"
	indexLabel     = "wre/label"
)

// indexers are the indexes every cache carries.
var indexers = cache.Indexers{
	indexNamespace: cache.MetaNamespaceIndexFunc,
	indexOwner:     ownerUIDs,
	indexLabel:     labelPairs,
}

// addIndexers adds the indexes that informer does not have yet (typed informers
// come with the namespace index).
func addIndexers(informer cache.SharedIndexInformer) error {
	missing := maps.Clone(indexers)
	for name := range informer.GetIndexer().GetIndexers() {
		delete(missing, name)
	}
	return informer.AddIndexers(missing)
}

// ownerUIDs indexes an object by the UIDs of its owners.
func ownerUIDs(obj any) ([]string, error) {
	m, err := objectMeta(obj)
	if err != nil {
		return nil, err
	}
	refs := m.GetOwnerReferences()
	uids := make([]string, 0, len(refs))
	for _, ref := range refs {
		uids = append(uids, string(ref.UID))
	}
	return uids, nil
}

// labelPairs indexes an object by each of its labels as "key=value".
func labelPairs(obj any) ([]string, error) {
	m, err := objectMeta(obj)
	if err != nil {
		return nil, err
	}
	labels := m.GetLabels()
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, labelKey(k, v))
	}
	return pairs, nil
}

// labelKey is the label index key of label k with value v.
func labelKey(k, v string) string { return k + "=" + v }
