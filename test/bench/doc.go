// Command bench runs wre's benchmark suite and regenerates
// docs/benchmarks.md: `make bench` runs it.
//
// Each suite (a Go benchmark run or a scripted run on the local control
// plane) produces one section of the document, delimited by
// `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers, so that
// `go run ./test/bench -only NAME` re-runs one suite and replaces only its
// section. Timings are reported as ratios against a baseline measured in the
// same run; absolute figures appear only beside their ratio.
package main
