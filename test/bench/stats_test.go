package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSummarize(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []float64{3}, Summary{Median: 3, Min: 3, Max: 3, N: 1}},
		{"odd count, unsorted", []float64{5, 1, 4}, Summary{Median: 4, Min: 1, Max: 5, N: 3}},
		{"even count: mean of the middle two", []float64{4, 1, 3, 10}, Summary{Median: 3.5, Min: 1, Max: 10, N: 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			assert.Equal(t, tt.want, Summarize(in))
			assert.Equal(t, tt.in, in, "input unchanged")
		})
	}
	assert.Equal(t, "2 s (1 s – 5 s)", Summary{Median: 2, Min: 1, Max: 5}.Format(Duration))
}

func TestFraction(t *testing.T) {
	assert.Equal(t, "1.05×", Fraction(15.75, 15))
	assert.Equal(t, "0.00364×", Fraction(0.0546, 15))
	assert.Equal(t, "n/a", Fraction(1, 0))
}
