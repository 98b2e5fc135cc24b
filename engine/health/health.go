package health

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Check reports nil when the thing it checks is fine, or why it is not.
type Check func(*http.Request) error

// Ping is a Check that always passes: the process answers HTTP.
func Ping(*http.Request) error { return nil }

// Probes holds the named checks of /healthz and /readyz.
type Probes struct {
	mu      sync.RWMutex
	healthz map[string]Check
	readyz  map[string]Check
}

// New returns Probes without checks: both probes pass until checks are added.
func New() *Probes {
	return &Probes{healthz: map[string]Check{}, readyz: map[string]Check{}}
}

// AddHealthz adds (or replaces) the liveness check called name.
func (p *Probes) AddHealthz(name string, c Check) { p.set(p.healthz, name, c) }

// AddReadyz adds (or replaces) the readiness check called name.
func (p *Probes) AddReadyz(name string, c Check) { p.set(p.readyz, name, c) }

// RemoveReadyz removes the readiness check called name, if any.
func (p *Probes) RemoveReadyz(name string) { p.set(p.readyz, name, nil) }

func (p *Probes) set(m map[string]Check, name string, c Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c == nil {
		delete(m, name)
		return
	}
	m[name] = c
}

// Handler serves /healthz, /readyz and their per-check sub-paths.
func (p *Probes) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", p.probe(p.healthz))
	mux.Handle("/healthz/", p.probe(p.healthz))
	mux.Handle("/readyz", p.probe(p.readyz))
	mux.Handle("/readyz/", p.probe(p.readyz))
	return mux
}

func (p *Probes) probe(checks map[string]Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, only, sub := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		p.mu.RLock()
		names := make([]string, 0, len(checks))
		selected := map[string]Check{}
		for name, c := range checks {
			if !sub || name == only {
				names = append(names, name)
				selected[name] = c
			}
		}
		p.mu.RUnlock()
		if sub && len(names) == 0 {
			http.Error(w, fmt.Sprintf("no check named %q", only), http.StatusNotFound)
			return
		}
		slices.Sort(names)

		var body strings.Builder
		failed := false
		for _, name := range names {
			if err := selected[name](r); err != nil {
				failed = true
				fmt.Fprintf(&body, "[-]%s failed: %v\n", name, err)
			} else if r.URL.Query().Has("verbose") {
				fmt.Fprintf(&body, "[+]%s ok\n", name)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if failed {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(&body, "check failed\n")
		} else {
			fmt.Fprint(&body, "ok\n")
		}
		_, _ = w.Write([]byte(body.String()))
	})
}
