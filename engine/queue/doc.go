// Package queue provides Queue, a typed priority work queue for controllers.
//
// It keeps every guarantee of client-go's workqueue and adds priorities with
// aging. Guarantees:
//   - Deduplication: an item that is already waiting is not queued twice; adding
//     it again with a higher priority raises it.
//   - An item is never handed to two workers at once: Get does not return an item
//     until the previous Get of it was followed by Done.
//   - An item added while it is being processed is processed again after Done,
//     with the priority it was added with; it is never lost.
//   - Get hands out the item with the highest effective priority, first in first
//     out within a priority. Effective priority = priority + time waited /
//     AgingInterval, so an item of any priority is handed out after a bounded wait, whatever
//     the load of higher-priority items (no starvation).
//   - AddAfter and AddRateLimited keep the priority the item was last added with;
//     a second AddAfter of an item that is already delayed keeps the earlier time.
//   - ShutDown wakes every blocked Get; items already queued are still handed out,
//     then Get reports shutdown. Adds after ShutDown are ignored.
//   - Metrics are client-go's workqueue metrics, reported through client-go's
//     MetricsProvider exactly as client-go's queue reports them.
//
// Add, Get and Done take O(1) time plus O(number of distinct priorities queued);
// AddAfter takes O(log n).
//
// Where it sits: the engine's controllers (engine/controller) feed it from
// informer event handlers and drain it with their reconcile workers. The code
// is split by concern: queue.go keeps the bookkeeping (which items exist, which
// are being processed and must run again), order.go the ordering (one FIFO
// per priority and the aging rule), delay.go the delayed items, store.go the
// entry storage.
package queue
