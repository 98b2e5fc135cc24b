package queue

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
