package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Status is the state of one module, as /modules serves it.
type Status struct {
	// Name of the module.
	Name string `json:"name"`
	// Digest of the running version; empty when none runs.
	Digest string `json:"digest,omitempty"`
	// ABI of the running version.
	ABI string `json:"abi,omitempty"`
	// State is StateLoaded or StateLoadFailed.
	State string `json:"state"`
	// LastError describes the last failed load attempt while State is
	// StateLoadFailed.
	LastError string `json:"lastError,omitempty"`
	// LoadedAt is when the running version started serving.
	LoadedAt *time.Time `json:"loadedAt,omitempty"`
	// Instances is the number of live wasm instances of the running version:
	// zero while the module has been idle (host.ModuleOptions.IdleTimeout).
	Instances int `json:"instances"`
	// IdleClosed counts the instances of the running version closed because
	// they stayed unused for the idle timeout.
	IdleClosed int64 `json:"idleClosed"`
	// Reconciles counts the module's reconciles since it was first loaded,
	// across versions; ReconcileErrors those that failed.
	Reconciles      int64 `json:"reconciles"`
	ReconcileErrors int64 `json:"reconcileErrors"`
	// Skipped counts the reconciles of the running version that memoization
	// skipped without entering the guest (manifest memoize: true); they are
	// part of Reconciles.
	Skipped int64 `json:"skipped,omitempty"`
}

// Statuses returns the state of every module, sorted by name.
func (r *Registry) Statuses() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.modules))
	for _, e := range r.modules {
		s := Status{Name: e.name, State: e.state, LastError: e.lastError}
		if e.slot != nil {
			v := e.slot.version()
			loaded := e.loadedAt
			s.Digest, s.ABI, s.LoadedAt = v.digest, v.abi, &loaded
			s.Instances, s.IdleClosed = v.module.Instances(), v.module.IdleClosed()
			s.Reconciles, s.ReconcileErrors = e.slot.reconciles.Load(), e.slot.errors.Load()
			if v.memo != nil {
				s.Skipped = v.memo.Skipped()
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Handler serves Statuses as JSON: the engine mounts it at /modules.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r.Statuses())
	})
}

// FetchStatuses reads the statuses an engine serves at url, its /modules
// endpoint (what Handler serves), with client (nil: http.DefaultClient; an
// engine run with --metrics-secure needs one that sends a bearer token): `wre
// status` and the benchmarks use it. A status other than 200 OK or a body
// that is not a list of statuses is an error naming url.
func FetchStatuses(ctx context.Context, client *http.Client, url string) ([]Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var out []Status
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return out, nil
}
