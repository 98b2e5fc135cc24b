package patch

import "reflect"

// CreateMerge returns the JSON merge patch that turns original into modified:
// changed and added members are set, removed members are set to null, and
// arrays are replaced whole.
func CreateMerge(original, modified map[string]any) map[string]any {
	p := map[string]any{}
	for k, mv := range modified {
		ov, ok := original[k]
		switch {
		case !ok:
			p[k] = clone(mv)
		case reflect.DeepEqual(ov, mv):
		default:
			om, oIsMap := ov.(map[string]any)
			mm, mIsMap := mv.(map[string]any)
			if oIsMap && mIsMap {
				p[k] = CreateMerge(om, mm)
			} else {
				p[k] = clone(mv)
			}
		}
	}
	for k := range original {
		if _, ok := modified[k]; !ok {
			p[k] = nil
		}
	}
	return p
}

// ApplyMerge returns target with the JSON merge patch applied (RFC 7386).
func ApplyMerge(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return clone(patch)
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	out := clone(tm).(map[string]any)
	for k, v := range pm {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = ApplyMerge(out[k], v)
	}
	return out
}

// clone deep-copies a decoded JSON value.
func clone(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = clone(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = clone(e)
		}
		return s
	default:
		return v
	}
}
