package benchmem

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

var held [][]byte

func TestFootprintSeesWhatIsHeld(t *testing.T) {
	heap0, rss0 := Footprint()
	for range 64 {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1 // touch every page, so it is resident
		}
		held = append(held, b)
	}
	heap1, rss1 := Footprint()
	assert.GreaterOrEqual(t, heap1-heap0, int64(60<<20))
	if _, err := os.Stat("/proc/self/statm"); err == nil {
		assert.GreaterOrEqual(t, rss1-rss0, int64(60<<20))
	}
	held = nil
}
