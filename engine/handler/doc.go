// Package handler turns informer events into reconcile requests for a
// controller's priority queue.
//
// Guarantees:
//   - ForObject maps every event to the object itself; ForOwner maps it to the
//     object's owners of one kind (matched on group and kind) through its owner
//     references, optionally only the controller reference.
//   - Priorities: adds from an informer's initial list are enqueued at
//     queue.PriorityLow, so a restart or a newly started controller does not
//     delay live work; live adds, updates and deletes at queue.PriorityNormal.
//   - Resyncs, updates whose resourceVersion did not change (periodic informer
//     resyncs and relists after a watch expired), are dropped: nothing changed,
//     so there is nothing to reconcile. A controller that wants periodic
//     reconciles asks for them with a requeue (reconcile.Result.RequeueAfter);
//     EnqueueResyncs keeps resyncs, at queue.PriorityLow.
//   - Predicates (such as GenerationChanged) filter updates only; an update that
//     changes the requests (owner references moved) is always delivered, to the
//     old and the new owners.
//   - Deletes are delivered also when the informer missed them: the
//     cache.DeletedFinalStateUnknown tombstone is unwrapped.
//   - A request is enqueued at most once per event.
package handler
