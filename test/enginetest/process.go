package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers: the
// log of an engine while it runs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// LogLine is the part of an engine log line that tests and benchmarks read.
type LogLine struct {
	// Time is when the engine logged the line (JSON format only).
	Time    time.Time `json:"time"`
	Msg     string    `json:"msg"`
	Address string    `json:"address"`
}

// LogWatcher finds lines in a growing engine log, JSON or text format.
type LogWatcher struct{ src fmt.Stringer }

// NewLogWatcher watches the log that src returns.
func NewLogWatcher(src fmt.Stringer) *LogWatcher { return &LogWatcher{src} }

// Find returns the first line whose message starts with msg. Text-format
// lines yield only Msg.
func (l *LogWatcher) Find(msg string) (LogLine, bool) {
	for raw := range strings.SplitSeq(l.src.String(), "\n") {
		var line LogLine
		if json.Unmarshal([]byte(raw), &line) == nil && strings.HasPrefix(line.Msg, msg) {
			return line, true
		}
		if strings.Contains(raw, `msg="`+msg) { // text format
			return LogLine{Msg: msg}, true
		}
	}
	return LogLine{}, false
}

// WaitFor polls every 5 ms until a line starting with msg is logged or ctx
// ends; the error then quotes the end of the log.
func (l *LogWatcher) WaitFor(ctx context.Context, msg string) (LogLine, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if line, ok := l.Find(msg); ok {
			return line, nil
		}
		select {
		case <-ctx.Done():
			return LogLine{}, fmt.Errorf("no log line %q: %w; log ends:\n%s", msg, context.Cause(ctx), tail(l.src.String(), 20))
		case <-tick.C:
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Engine is one `wre run` process, its standard error kept in memory. The
// process gets SIGKILL when the calling process dies, so even a crashed test
// or benchmark leaves no engine behind.
type Engine struct {
	// Name tells engines apart in messages.
	Name string
	Cmd  *exec.Cmd
	*LogWatcher

	log    *SyncBuffer
	exited chan struct{}
	err    error
}

// StartEngine starts `bin run args...`. Pass --log-format json (the default)
// for Find to return times and addresses.
func StartEngine(bin, name string, args ...string) (*Engine, error) {
	e := &Engine{Name: name, log: &SyncBuffer{}, exited: make(chan struct{})}
	e.LogWatcher = NewLogWatcher(e.log)
	e.Cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	e.Cmd.Stderr = e.log
	e.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start engine %s: %w", name, err)
	}
	go func() {
		e.err = e.Cmd.Wait()
		close(e.exited)
	}()
	return e, nil
}

// PID is the engine's process id.
func (e *Engine) PID() int { return e.Cmd.Process.Pid }

// Log returns what the engine logged so far.
func (e *Engine) Log() string { return e.log.String() }

// LogTail returns the last n lines the engine logged.
func (e *Engine) LogTail(n int) string { return tail(e.Log(), n) }

// Exited is closed when the process has exited; Err then tells how.
func (e *Engine) Exited() <-chan struct{} { return e.exited }

// Err is the process's exit error (nil for exit code 0); valid after Exited.
func (e *Engine) Err() error { return e.err }

// Kill sends SIGKILL and waits until the process is gone.
func (e *Engine) Kill() {
	_ = e.Cmd.Process.Kill()
	<-e.exited
}

// Stop sends SIGTERM and waits for the exit, killing the process after grace.
// It returns the exit error of a graceful exit, or an error saying it was
// killed. Stopping an exited engine returns its exit error again.
func (e *Engine) Stop(grace time.Duration) error {
	select {
	case <-e.exited:
		return e.err
	default:
	}
	_ = e.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
		return e.err
	case <-time.After(grace):
		e.Kill()
		return fmt.Errorf("engine %s did not stop within %s of SIGTERM: killed", e.Name, grace)
	}
}

// Address waits until the engine serves server ("metrics" or "probes") and
// returns its address.
func (e *Engine) Address(ctx context.Context, server string) (string, error) {
	line, err := e.WaitFor(ctx, "Serving "+server)
	if err != nil {
		return "", err
	}
	if line.Address == "" {
		return "", fmt.Errorf("engine %s: no address in the %q line (use --log-format json)", e.Name, line.Msg)
	}
	return line.Address, nil
}

// Ready waits until the engine's /readyz passes (its caches have synced and,
// on the leader, its workers run), the engine exits, or ctx ends.
func (e *Engine) Ready(ctx context.Context) error {
	addr, err := e.Address(ctx, "probes")
	if err != nil {
		return err
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-e.exited:
			return fmt.Errorf("engine %s exited before it was ready (%v); log ends:\n%s", e.Name, e.err, tail(e.Log(), 20))
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("engine %s not ready", e.Name), context.Cause(ctx))
		case <-tick.C:
		}
	}
}
