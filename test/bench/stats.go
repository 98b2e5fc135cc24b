package main

import (
	"fmt"
	"slices"
)

// Summary is the median, minimum and maximum of a set of measurements.
type Summary struct {
	Median, Min, Max float64
	// N is the number of measurements; the other fields are 0 when it is.
	N int
}

// Summarize returns the summary of xs (the median of an even count is the
// mean of the middle two). It does not modify xs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// Format renders the summary with f, e.g. Duration: "5.1 s (4.9 s – 6.0 s)".
func (s Summary) Format(f func(float64) string) string {
	return fmt.Sprintf("%s (%s – %s)", f(s.Median), f(s.Min), f(s.Max))
}

// Fraction formats a/b as a ratio with three significant digits, e.g.
// "1.05×" or "0.00364×", for ratios far below 1 that Ratio rounds to 0.
func Fraction(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3g×", a/b)
}
