package queue_test

import (
	"errors"
	"fmt"

	"github.com/wre-dev/wre/engine/queue"
)

// A controller queues resync items low, watch events normal, and work that
// must jump the line high; workers get them in that order.
func Example() {
	q := queue.New(queue.Options[string]{})
	defer q.ShutDown()

	q.AddWithPriority("default/listed", queue.PriorityLow) // initial list or resync
	q.Add("default/changed")                               // watch event
	q.AddWithPriority("default/urgent", queue.PriorityHigh)
	q.AddWithPriority("default/listed", queue.PriorityLow) // deduplicated

	for q.Len() > 0 {
		item, _ := q.Get()
		fmt.Println(item)
		q.Done(item)
	}
	// Output:
	// default/urgent
	// default/changed
	// default/listed
}

// processNextItem is the shape of a worker: Done is deferred, a failure is
// retried with backoff at the item's priority, a success resets the backoff.
func processNextItem(q *queue.Queue[string], reconcile func(string) error) bool {
	item, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(item)
	if err := reconcile(item); err != nil {
		q.AddRateLimited(item)
		return true
	}
	q.Forget(item)
	return true
}

func ExampleQueue_AddRateLimited() {
	q := queue.New(queue.Options[string]{})
	defer q.ShutDown()

	q.Add("default/flaky")
	processNextItem(q, func(string) error { return errors.New("conflict") })
	fmt.Println("requeues:", q.NumRequeues("default/flaky"))

	processNextItem(q, func(string) error { return nil }) // after the backoff
	fmt.Println("requeues:", q.NumRequeues("default/flaky"))
	// Output:
	// requeues: 1
	// requeues: 0
}
