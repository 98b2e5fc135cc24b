package modules

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/wre-dev/wre/host"
)

// Limits are the engine's ceilings on what a manifest may ask for. A manifest
// may ask for less than a ceiling, never for more: Check refuses a module
// asking for more, naming the field, both values and the flag that sets the
// ceiling. A manifest that asks for nothing gets the host's default, or the
// ceiling when that is lower (Apply). A zero field is DefaultLimits' value.
type Limits struct {
	// MemoryBytes caps memoryLimit (linear memory per instance). At most
	// MaxMemoryLimitBytes (4 GiB).
	MemoryBytes int64
	// Concurrency caps concurrency (instances, and reconciles at once). At
	// most MaxConcurrency.
	Concurrency int
	// ReconcileTimeout caps reconcileTimeout. At most MaxReconcileTimeout.
	ReconcileTimeout time.Duration
	// InitTimeout caps initTimeout (starting an instance, _initialize
	// included). At most MaxReconcileTimeout.
	InitTimeout time.Duration
	// LogLines caps maxLogLines (guest log lines per reconcile). At most
	// MaxLogLines.
	LogLines int
	// LogBytes caps maxLogBytes (guest log bytes per reconcile). At most
	// MaxLogBytes.
	LogBytes int64
}

// Absolute bounds of the log ceilings.
const (
	MaxLogLines = 1 << 20
	MaxLogBytes = 64 << 20
)

// DefaultLimits are the ceilings of an engine started without limit flags.
var DefaultLimits = Limits{
	MemoryBytes:      1 << 30,
	Concurrency:      64,
	ReconcileTimeout: MaxReconcileTimeout,
	InitTimeout:      time.Minute,
	LogLines:         10 * host.DefaultMaxLogLines,
	LogBytes:         10 * host.DefaultMaxLogBytes,
}

// limit describes one ceiling: the manifest field it bounds, the `wre run`
// flag that sets it, the absolute bound of the ceiling, and how to read the
// manifest's ask, read the ceiling, and read and set the host option.
type limit struct {
	field, flag string
	max         int64
	asked       func(*Manifest) int64 // 0: the manifest asks for nothing
	ceiling     func(Limits) int64
	setCeiling  func(*Limits, int64)
	option      func(host.ModuleOptions) int64 // 0: the host default
	setOption   func(*host.ModuleOptions, int64)
	hostDefault int64
	show        func(int64) string
}

// Ceiling flags of `wre run`.
const (
	FlagMaxMemory           = "max-module-memory"
	FlagMaxConcurrency      = "max-module-concurrency"
	FlagMaxReconcileTimeout = "max-reconcile-timeout"
	FlagMaxInitTimeout      = "max-init-timeout"
	FlagMaxLogLines         = "max-log-lines"
	FlagMaxLogBytes         = "max-log-bytes"
)

// limitsTable lists every ceiling; Check, Apply and Validate share it.
var limitsTable = []limit{
	{field: "memoryLimit", flag: FlagMaxMemory, max: MaxMemoryLimitBytes, hostDefault: host.DefaultMemoryLimitBytes, show: showBytes,
		asked:      func(m *Manifest) int64 { return quantity(m.MemoryLimit) },
		ceiling:    func(l Limits) int64 { return l.MemoryBytes },
		setCeiling: func(l *Limits, v int64) { l.MemoryBytes = v },
		option:     func(o host.ModuleOptions) int64 { return int64(o.MemoryLimitBytes) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.MemoryLimitBytes = uint64(v) }},
	{field: "concurrency", flag: FlagMaxConcurrency, max: MaxConcurrency, hostDefault: host.DefaultConcurrency, show: showInt,
		asked:      func(m *Manifest) int64 { return int64(m.Concurrency) },
		ceiling:    func(l Limits) int64 { return int64(l.Concurrency) },
		setCeiling: func(l *Limits, v int64) { l.Concurrency = int(v) },
		option:     func(o host.ModuleOptions) int64 { return int64(o.Concurrency) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.Concurrency = int(v) }},
	{field: "reconcileTimeout", flag: FlagMaxReconcileTimeout, max: int64(MaxReconcileTimeout), hostDefault: int64(host.DefaultReconcileTimeout), show: showDuration,
		asked:      func(m *Manifest) int64 { return int64(m.ReconcileTimeout.Duration) },
		ceiling:    func(l Limits) int64 { return int64(l.ReconcileTimeout) },
		setCeiling: func(l *Limits, v int64) { l.ReconcileTimeout = time.Duration(v) },
		option:     func(o host.ModuleOptions) int64 { return int64(o.ReconcileTimeout) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.ReconcileTimeout = time.Duration(v) }},
	{field: "initTimeout", flag: FlagMaxInitTimeout, max: int64(MaxReconcileTimeout), hostDefault: int64(host.DefaultInitTimeout), show: showDuration,
		asked:      func(m *Manifest) int64 { return int64(m.InitTimeout.Duration) },
		ceiling:    func(l Limits) int64 { return int64(l.InitTimeout) },
		setCeiling: func(l *Limits, v int64) { l.InitTimeout = time.Duration(v) },
		option:     func(o host.ModuleOptions) int64 { return int64(o.InitTimeout) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.InitTimeout = time.Duration(v) }},
	{field: "maxLogLines", flag: FlagMaxLogLines, max: MaxLogLines, hostDefault: host.DefaultMaxLogLines, show: showInt,
		asked:      func(m *Manifest) int64 { return int64(m.MaxLogLines) },
		ceiling:    func(l Limits) int64 { return int64(l.LogLines) },
		setCeiling: func(l *Limits, v int64) { l.LogLines = int(v) },
		option:     func(o host.ModuleOptions) int64 { return int64(o.MaxLogLines) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.MaxLogLines = int(v) }},
	{field: "maxLogBytes", flag: FlagMaxLogBytes, max: MaxLogBytes, hostDefault: host.DefaultMaxLogBytes, show: showBytes,
		asked:      func(m *Manifest) int64 { return quantity(m.MaxLogBytes) },
		ceiling:    func(l Limits) int64 { return l.LogBytes },
		setCeiling: func(l *Limits, v int64) { l.LogBytes = v },
		option:     func(o host.ModuleOptions) int64 { return int64(o.MaxLogBytes) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.MaxLogBytes = int(v) }},
}

func quantity(q *resource.Quantity) int64 {
	if q == nil {
		return 0
	}
	return q.Value()
}

func showInt(v int64) string      { return fmt.Sprint(v) }
func showDuration(v int64) string { return time.Duration(v).String() }
func showBytes(v int64) string    { return resource.NewQuantity(v, resource.BinarySI).String() }

// withDefaults fills the zero ceilings from DefaultLimits.
func (l Limits) withDefaults() Limits {
	for _, lt := range limitsTable {
		if lt.ceiling(l) <= 0 {
			lt.setCeiling(&l, lt.ceiling(DefaultLimits))
		}
	}
	return l
}

// Validate checks that no ceiling is negative or above its absolute bound,
// naming the flag.
func (l Limits) Validate() error {
	var errs []error
	for _, lt := range limitsTable {
		if v := lt.ceiling(l); v < 0 || v > lt.max {
			errs = append(errs, fmt.Errorf("--%s %s: must be positive and at most %s", lt.flag, lt.show(v), lt.show(lt.max)))
		}
	}
	return errors.Join(errs...)
}

// Check returns an error naming every limit m asks for above its ceiling,
// with both values and the flag that sets the ceiling, or nil.
func (l Limits) Check(m *Manifest) error {
	l = l.withDefaults()
	var errs []error
	for _, lt := range limitsTable {
		if asked, ceiling := lt.asked(m), lt.ceiling(l); asked > ceiling {
			errs = append(errs, fmt.Errorf("%s %s is above the engine's ceiling of %s (wre run --%s)", lt.field, lt.show(asked), lt.show(ceiling), lt.flag))
		}
	}
	return errors.Join(errs...)
}

// Apply bounds the host options of a module: every limit left at the host
// default (zero) becomes that default, or the ceiling when it is lower. The
// limits a manifest asked for are left as they are (Check refused those above
// their ceilings).
func (l Limits) Apply(o host.ModuleOptions) host.ModuleOptions {
	l = l.withDefaults()
	for _, lt := range limitsTable {
		if lt.option(o) <= 0 {
			lt.setOption(&o, min(lt.hostDefault, lt.ceiling(l)))
		}
	}
	return o
}
