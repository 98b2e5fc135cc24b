package queue

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLockSpinsOnlyWithSeveralPs(t *testing.T) {
	q := New(Options[int]{})
	defer q.ShutDown()
	assert.Equal(t, runtime.GOMAXPROCS(0) > 1, q.spin)
}

// TestLockExcludes runs lock against itself and against sync.Mutex.Lock, with
// and without spinning: a counter that only holders touch ends exact, and the
// race detector sees every holder ordered after the previous one.
func TestLockExcludes(t *testing.T) {
	for _, spin := range []bool{false, true} {
		t.Run(map[bool]string{false: "block", true: "spin"}[spin], func(t *testing.T) {
			q := New(Options[int]{})
			defer q.ShutDown()
			q.spin = spin
			const goroutines, rounds = 8, 2000
			n := 0
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for range rounds {
						if g%2 == 0 {
							q.lock()
						} else {
							q.mu.Lock()
						}
						n++
						q.mu.Unlock()
					}
				})
			}
			wg.Wait()
			assert.Equal(t, goroutines*rounds, n)
		})
	}
}
