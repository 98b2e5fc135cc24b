package host

// WithoutCloseOnContextDone switches off the timeout check in guest loops, for
// the benchmark that measures what it costs.
func WithoutCloseOnContextDone(o RuntimeOptions) RuntimeOptions {
	o.noCloseOnContextDone = true
	return o
}
