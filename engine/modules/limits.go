package modules

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
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
// flag and the policy file's limits key that set it, the absolute bound of
// the ceiling, how to parse and show a value, and how to read the manifest's
// ask, read and set the ceiling, and read and set the host option.
type limit struct {
	field, flag, key string
	usage            string
	max              int64
	parse            func(string) (int64, error)
	asked            func(*Manifest) int64 // 0: the manifest asks for nothing
	ceiling          func(Limits) int64
	setCeiling       func(*Limits, int64)
	option           func(host.ModuleOptions) int64 // 0: the host default
	setOption        func(*host.ModuleOptions, int64)
	hostDefault      int64
	show             func(int64) string
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

// limitsTable lists every ceiling; Check, Apply, Validate, Over, the flags
// (RegisterFlags) and the policy file (UnmarshalJSON) share it.
var limitsTable = []limit{
	{field: "memoryLimit", flag: FlagMaxMemory, key: "memory", parse: parseBytes,
		usage: "ceiling of a module's memoryLimit (linear memory per instance)", max: MaxMemoryLimitBytes, hostDefault: host.DefaultMemoryLimitBytes, show: showBytes,
		asked:      func(m *Manifest) int64 { return quantity(m.MemoryLimit) },
		ceiling:    func(l Limits) int64 { return l.MemoryBytes },
		setCeiling: func(l *Limits, v int64) { l.MemoryBytes = v },
		option:     func(o host.ModuleOptions) int64 { return int64(o.MemoryLimitBytes) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.MemoryLimitBytes = uint64(v) }},
	{field: "concurrency", flag: FlagMaxConcurrency, key: "concurrency", parse: parseInt,
		usage: "ceiling of a module's concurrency (instances and reconciles at once)", max: MaxConcurrency, hostDefault: host.DefaultConcurrency, show: showInt,
		asked:      func(m *Manifest) int64 { return int64(m.Concurrency) },
		ceiling:    func(l Limits) int64 { return int64(l.Concurrency) },
		setCeiling: func(l *Limits, v int64) { l.Concurrency = int(v) },
		option:     func(o host.ModuleOptions) int64 { return int64(o.Concurrency) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.Concurrency = int(v) }},
	{field: "reconcileTimeout", flag: FlagMaxReconcileTimeout, key: "reconcileTimeout", parse: parseDuration,
		usage: "ceiling of a module's reconcileTimeout", max: int64(MaxReconcileTimeout), hostDefault: int64(host.DefaultReconcileTimeout), show: showDuration,
		asked:      func(m *Manifest) int64 { return int64(m.ReconcileTimeout.Duration) },
		ceiling:    func(l Limits) int64 { return int64(l.ReconcileTimeout) },
		setCeiling: func(l *Limits, v int64) { l.ReconcileTimeout = time.Duration(v) },
		option:     func(o host.ModuleOptions) int64 { return int64(o.ReconcileTimeout) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.ReconcileTimeout = time.Duration(v) }},
	{field: "initTimeout", flag: FlagMaxInitTimeout, key: "initTimeout", parse: parseDuration,
		usage: "ceiling of a module's initTimeout (starting an instance, _initialize included)", max: int64(MaxReconcileTimeout), hostDefault: int64(host.DefaultInitTimeout), show: showDuration,
		asked:      func(m *Manifest) int64 { return int64(m.InitTimeout.Duration) },
		ceiling:    func(l Limits) int64 { return int64(l.InitTimeout) },
		setCeiling: func(l *Limits, v int64) { l.InitTimeout = time.Duration(v) },
		option:     func(o host.ModuleOptions) int64 { return int64(o.InitTimeout) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.InitTimeout = time.Duration(v) }},
	{field: "maxLogLines", flag: FlagMaxLogLines, key: "logLines", parse: parseInt,
		usage: "ceiling of a module's maxLogLines (guest log lines per reconcile)", max: MaxLogLines, hostDefault: host.DefaultMaxLogLines, show: showInt,
		asked:      func(m *Manifest) int64 { return int64(m.MaxLogLines) },
		ceiling:    func(l Limits) int64 { return int64(l.LogLines) },
		setCeiling: func(l *Limits, v int64) { l.LogLines = int(v) },
		option:     func(o host.ModuleOptions) int64 { return int64(o.MaxLogLines) },
		setOption:  func(o *host.ModuleOptions, v int64) { o.MaxLogLines = int(v) }},
	{field: "maxLogBytes", flag: FlagMaxLogBytes, key: "logBytes", parse: parseBytes,
		usage: "ceiling of a module's maxLogBytes (guest log bytes per reconcile)", max: MaxLogBytes, hostDefault: host.DefaultMaxLogBytes, show: showBytes,
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

// The parsers of a ceiling written in a flag or in the policy file: the
// formats of the manifest's fields.
func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

func parseDuration(s string) (int64, error) {
	d, err := time.ParseDuration(s)
	return int64(d), err
}

func parseBytes(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, err
	}
	return q.Value(), nil
}

// withDefaults fills the zero ceilings from DefaultLimits.
func (l Limits) withDefaults() Limits {
	return l.Over(DefaultLimits)
}

// Over returns base with every positive ceiling of l in place of base's: the
// ceilings of explicitly set flags (RegisterFlags) over the policy file's,
// which are in turn over DefaultLimits (a ceiling left zero at the end is
// DefaultLimits').
func (l Limits) Over(base Limits) Limits {
	for _, lt := range limitsTable {
		if v := lt.ceiling(l); v > 0 {
			lt.setCeiling(&base, v)
		}
	}
	return base
}

// Validate checks that no ceiling is negative or above its absolute bound,
// naming the flag.
func (l Limits) Validate() error {
	return l.validate(func(lt limit) string { return "--" + lt.flag })
}

// validate is Validate naming each ceiling by name(lt).
func (l Limits) validate(name func(limit) string) error {
	var errs []error
	for _, lt := range limitsTable {
		if v := lt.ceiling(l); v < 0 || v > lt.max {
			errs = append(errs, fmt.Errorf("%s %s: must be positive and at most %s", name(lt), lt.show(v), lt.show(lt.max)))
		}
	}
	return errors.Join(errs...)
}

// Check returns an error naming every limit m asks for above its ceiling,
// with both values and where the ceiling is set (the `wre run` flag or the
// policy file's limits), or nil.
func (l Limits) Check(m *Manifest) error {
	l = l.withDefaults()
	var errs []error
	for _, lt := range limitsTable {
		if asked, ceiling := lt.asked(m), lt.ceiling(l); asked > ceiling {
			errs = append(errs, fmt.Errorf("%s %s is above the engine's ceiling of %s (wre run --%s or policy limits.%s)", lt.field, lt.show(asked), lt.show(ceiling), lt.flag, lt.key))
		}
	}
	return errors.Join(errs...)
}

// RegisterFlags adds one flag per ceiling to fs (--max-module-memory and the
// others), each showing DefaultLimits' value and writing its ceiling in l. A
// flag left unset leaves its ceiling zero (RegisterFlags zeroes l), so that
// Over can tell it from a flag set explicitly.
func (l *Limits) RegisterFlags(fs *flag.FlagSet) {
	*l = Limits{}
	for _, lt := range limitsTable {
		fs.Var(ceilingFlag{lt, l}, lt.flag, fmt.Sprintf("%s, at most %s (default %s; overrides the policy file's limits.%s)",
			lt.usage, lt.show(lt.max), lt.show(lt.ceiling(DefaultLimits)), lt.key))
	}
}

// ceilingFlag is the flag.Value of one ceiling.
type ceilingFlag struct {
	lt limit
	l  *Limits
}

func (f ceilingFlag) String() string {
	if f.l == nil || f.lt.ceiling(*f.l) == 0 {
		return ""
	}
	return f.lt.show(f.lt.ceiling(*f.l))
}

func (f ceilingFlag) Set(s string) error {
	v, err := f.lt.parse(s)
	if err != nil {
		return err
	}
	f.lt.setCeiling(f.l, v)
	return nil
}

// UnmarshalJSON reads the limits block of a policy file: the keys memory,
// concurrency, reconcileTimeout, initTimeout, logLines and logBytes, in the
// formats of the manifest's fields (quantities such as 512Mi, durations such
// as 30s, integers). An unknown key or a value that does not parse is an
// error naming the key; a key left out leaves its ceiling zero.
func (l *Limits) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	var errs []error
	for _, lt := range limitsTable {
		v, ok := raw[lt.key]
		if !ok {
			continue
		}
		delete(raw, lt.key)
		var text any
		if err := json.Unmarshal(v, &text); err != nil {
			errs = append(errs, fmt.Errorf("limits.%s: %w", lt.key, err))
			continue
		}
		var s string
		switch t := text.(type) {
		case nil:
			continue
		case string:
			s = t
		case float64:
			s = string(v)
		default:
			errs = append(errs, fmt.Errorf("limits.%s: must be a string or a number", lt.key))
			continue
		}
		n, err := lt.parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("limits.%s: %q is not a valid %s value: %w", lt.key, s, lt.field, err))
			continue
		}
		lt.setCeiling(l, n)
	}
	unknown := make([]string, 0, len(raw))
	for key := range raw {
		unknown = append(unknown, key)
	}
	sort.Strings(unknown)
	for _, key := range unknown {
		errs = append(errs, fmt.Errorf("limits.%s: unknown field (known: %s)", key, limitKeys()))
	}
	return errors.Join(errs...)
}

// MarshalJSON writes the nonzero ceilings as UnmarshalJSON reads them.
func (l Limits) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	for _, lt := range limitsTable {
		if v := lt.ceiling(l); v != 0 {
			if lt.show(v) == showInt(v) {
				out[lt.key] = v
			} else {
				out[lt.key] = lt.show(v)
			}
		}
	}
	return json.Marshal(out)
}

func limitKeys() string {
	keys := make([]string, len(limitsTable))
	for i, lt := range limitsTable {
		keys[i] = lt.key
	}
	return strings.Join(keys, ", ")
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
