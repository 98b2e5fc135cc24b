package abi

import "github.com/wre-dev/wre/guest-sdk/abi/flat"

// ABI v2 messages from the host to the guest, and the reconcile response,
// are flat records (package flat); call requests from the guest stay
// Request messages (§3.4). The slot numbers below are the normative layout
// of docs/abi.md §10.

// Slots of the v2 reconcile request the host writes at the start of the
// guest's buffer before calling wre_reconcile.
const (
	ReconcileSlotNamespace = 0 // string
	ReconcileSlotName      = 1 // string
	ReconcileSlotID        = 2 // string
	ReconcileSlotObject    = 3 // bytes: the primary object in its projection
	ReconcileSlotFound     = 4 // bool: the primary object exists (in the cache)
	ReconcileSlots         = 5
)

// ReconcileKinds are the kinds of the v2 reconcile request's slots.
var ReconcileKinds = []flat.Kind{flat.String, flat.String, flat.String, flat.Bytes, flat.Bool}

// Slots of the v2 reconcile response (guest → host). A record with fewer
// slots reads the missing ones as zero; returning 0 instead of a record means
// success with nothing to requeue.
const (
	ResultSlotRequeueAfter = 0 // int: nanoseconds, ignored unless > 0
	ResultSlotError        = 1 // string: the error message
	ResultSlotFailed       = 2 // bool: the reconcile failed
	ResultSlotTerminal     = 3 // bool: do not retry (implies failed)
	ResultSlotPanicked     = 4 // bool: a recovered panic (implies failed)
	ResultSlots            = 5
)

// ResultKinds are the kinds of the v2 reconcile response's slots.
var ResultKinds = []flat.Kind{flat.Int, flat.String, flat.Bool, flat.Bool, flat.Bool}

// Slots of the v2 call response (host → guest), the flat form of Response.
const (
	ResponseSlotCode            = 0 // int: HTTP status code
	ResponseSlotReason          = 1 // string: metav1.StatusReason
	ResponseSlotMessage         = 2 // string
	ResponseSlotGroup           = 3 // string: details group
	ResponseSlotKind            = 4 // string: details kind
	ResponseSlotName            = 5 // string: details name
	ResponseSlotObject          = 6 // bytes: the object (projected record, or JSON with projection 0)
	ResponseSlotItems           = 7 // strings: list items, each like the object
	ResponseSlotContinue        = 8 // string: list continue token
	ResponseSlotResourceVersion = 9 // string: list resource version
	ResponseSlots               = 10
)

// ResponseKinds are the kinds of the v2 call response's slots.
var ResponseKinds = []flat.Kind{flat.Int, flat.String, flat.String, flat.String, flat.String, flat.String,
	flat.Bytes, flat.Strings, flat.String, flat.String}

// StatusOf returns the status carried by a v2 call response.
func StatusOf(r flat.Record) Status {
	return Status{
		Code:    int32(r.Int(ResponseSlotCode)),
		Reason:  r.String(ResponseSlotReason),
		Message: r.String(ResponseSlotMessage),
		Group:   r.String(ResponseSlotGroup),
		Kind:    r.String(ResponseSlotKind),
		Name:    r.String(ResponseSlotName),
	}
}
