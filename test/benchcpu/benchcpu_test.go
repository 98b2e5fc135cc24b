package benchcpu

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestProcessCPUGrowsWithWork(t *testing.T) {
	before := processCPU()
	x := 0
	for i := range 50_000_000 {
		x += i ^ x
	}
	assert.NotZero(t, x)
	assert.Greater(t, processCPU(), before, "spinning uses CPU time")
}

func BenchmarkReportsCPUPerOp(b *testing.B) {
	report := Start(b)
	x := 0
	for b.Loop() {
		for i := range 1000 {
			x += i ^ x
		}
	}
	report()
	_ = x
}
