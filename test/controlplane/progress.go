package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// progress reports a build of the binaries to a log: a line when each step
// (one go build) starts and ends, and every ProgressInterval a line per
// running step saying what it is doing, so that a cold build of many minutes
// never looks stuck.
type progress struct {
	log   io.Writer
	clock clock.WithTicker
	begin time.Time

	mu    sync.Mutex // guards steps' counters and writes to log
	steps []*stepProgress
}

// stepProgress follows the output of one go build -v; it is an io.Writer.
type stepProgress struct {
	p    *progress
	n    int
	what string // the binaries and where they come from

	// guarded by p.mu
	partial   []byte
	downloads int
	compiled  int
	current   string
	finished  bool
}

func newProgress(log io.Writer, steps int) *progress {
	return newProgressWithClock(log, steps, clock.RealClock{})
}

func newProgressWithClock(log io.Writer, steps int, c clock.WithTicker) *progress {
	return &progress{log: log, clock: c, begin: c.Now(), steps: make([]*stepProgress, steps)}
}

// step announces step i (building bs) and returns its output sink.
func (p *progress) step(i int, bs []binary) *stepProgress {
	var names, pkgs []string
	for _, b := range bs {
		names = append(names, b.name)
		pkgs = append(pkgs, b.pkg)
	}
	s := &stepProgress{p: p, n: i + 1,
		what: fmt.Sprintf("%s (%s, %s; sources from the Go module proxy)", strings.Join(names, ", "), strings.Join(pkgs, ", "), bs[0].version)}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps[i] = s
	fmt.Fprintf(p.log, "controlplane: step %d/%d: building %s\n", s.n, len(p.steps), s.what)
	return s
}

func (p *progress) elapsed() time.Duration { return p.clock.Since(p.begin).Round(time.Second) }

// start prints a heartbeat every ProgressInterval until the returned stop is
// called or ctx ends.
func (p *progress) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	t := p.clock.NewTicker(ProgressInterval)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				p.heartbeat()
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (p *progress) heartbeat() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.steps {
		if s == nil || s.finished {
			continue
		}
		var doing string
		switch {
		case s.compiled > 0:
			doing = fmt.Sprintf("%d packages compiled, now %s", s.compiled, s.current)
		case s.downloads > 0:
			doing = fmt.Sprintf("downloading modules: %d so far, now %s", s.downloads, s.current)
		default:
			doing = "resolving modules"
		}
		fmt.Fprintf(p.log, "controlplane: [%s] step %d/%d %s: %s\n", p.elapsed(), s.n, len(p.steps), s.what, doing)
	}
}

// Write takes go build -v output: "go: downloading M V" lines while fetching
// modules, then one import path per compiled package.
func (s *stepProgress) Write(b []byte) (int, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
		if m, ok := strings.CutPrefix(line, "go: downloading "); ok {
			s.downloads++
			s.current = m
		} else if line != "" && !strings.ContainsAny(line, " \t:") {
			s.compiled++
			s.current = line
		}
	}
	return len(b), nil
}

// done reports the end of the step.
func (s *stepProgress) done() {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.finished = true
	fmt.Fprintf(s.p.log, "controlplane: step %d/%d done after %s: %s\n", s.n, len(s.p.steps), s.p.elapsed(), s.what)
}
