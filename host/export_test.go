package host

import "time"

// SetTrapEventTimeout shortens how long m waits for the reconciled object
// when recording a trap event.
func SetTrapEventTimeout(m *Module, d time.Duration) { m.trapEventTimeout = d }
