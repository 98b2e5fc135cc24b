package queue

import "strconv"

// Priority orders items in a Queue: higher values are handed out first. Items of
// equal priority are handed out in the order they were added.
type Priority int

const (
	// PriorityLow is for items from initial lists and periodic resyncs.
	PriorityLow Priority = -100
	// PriorityNormal is for live watch events and explicit Adds.
	PriorityNormal Priority = 0
	// PriorityHigh is for work that must jump the line.
	PriorityHigh Priority = 100
)

// String returns "low", "normal" or "high" for the named priorities and the
// number for any other, e.g. for a metric label.
func (p Priority) String() string {
	switch p {
	case PriorityLow:
		return "low"
	case PriorityNormal:
		return "normal"
	case PriorityHigh:
		return "high"
	default:
		return strconv.Itoa(int(p))
	}
}
