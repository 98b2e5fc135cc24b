package queue

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// burst allocates n entries, then releases them all: the store ends empty.
func burst(s *store[int], n int) {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = s.alloc()
		s.get(ids[i]).item = i
	}
	for _, id := range ids {
		s.release(id)
	}
}

func TestStoreReturnsChunksOfALargeBurst(t *testing.T) {
	var s store[int]
	burst(&s, 3*chunkLen) // indexes 1…3×chunkLen: four chunks
	require.Len(t, s.chunks, 4)
	for range trimBursts - 1 {
		burst(&s, 1)
	}
	assert.Len(t, s.chunks, 4, "the large burst was one of the last trimBursts")
	for range trimBursts {
		burst(&s, 1)
	}
	assert.Len(t, s.chunks, 1, "no burst of the last trimBursts used more than one chunk")
	assert.LessOrEqual(t, cap(s.free), 2*chunkLen, "the free list shrinks with the chunks")
	assert.Equal(t, entry[int]{}, *s.get(s.alloc()), "a reused entry is zeroed")
}

func TestStoreKeepsChunksThatBurstsKeepUsing(t *testing.T) {
	var s store[int]
	burst(&s, chunkLen) // index chunkLen is the first of the second chunk
	require.Len(t, s.chunks, 2)
	second := s.chunks[1]
	for range 4 * trimBursts {
		burst(&s, 1)
		burst(&s, 1)
		burst(&s, chunkLen)
	}
	require.Len(t, s.chunks, 2)
	assert.Same(t, second, s.chunks[1], "the second chunk was allocated again")
}
