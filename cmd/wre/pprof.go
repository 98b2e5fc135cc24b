package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/pprof"
	"sync"

	"github.com/wre-dev/wre/engine/manager"
)

// servePprof serves Go's runtime profiles (/debug/pprof/: heap, CPU,
// goroutines, allocations, mutex and block) next to /metrics. Off by default:
// profiles reveal internals and a CPU profile or trace costs CPU while it is
// taken, so turn it on to investigate, on an address only operators reach.
var servePprof bool

func init() {
	extendRun(runExtension{
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&servePprof, "pprof", false, "serve Go's profiles under /debug/pprof/ on the metrics address (for investigations)")
		},
		setup: func(_ context.Context, mgr *manager.Manager, _ *sync.WaitGroup) error {
			if !servePprof {
				return nil
			}
			for path, h := range map[string]http.HandlerFunc{
				"/debug/pprof/":        pprof.Index, // and every named profile below it
				"/debug/pprof/cmdline": pprof.Cmdline,
				"/debug/pprof/profile": pprof.Profile,
				"/debug/pprof/symbol":  pprof.Symbol,
				"/debug/pprof/trace":   pprof.Trace,
			} {
				if err := mgr.HandleMetricsPath(path, h); err != nil {
					return fmt.Errorf("--pprof: %w", err)
				}
			}
			return nil
		},
	})
}
