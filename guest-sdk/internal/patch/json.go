package patch

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error of ApplyJSON: the patch is malformed or
// does not fit the document.
var ErrInvalid = errors.New("invalid json patch")

// ApplyJSON returns doc with the JSON patch ops applied in order (RFC 6902:
// add, remove, replace, move, copy, test). ops is the decoded patch array.
func ApplyJSON(doc any, ops []any) (any, error) {
	doc = clone(doc)
	for i, raw := range ops {
		var err error
		if doc, err = applyOp(doc, raw); err != nil {
			return nil, fmt.Errorf("%w: operation %d: %w", ErrInvalid, i, err)
		}
	}
	return doc, nil
}

func applyOp(doc any, raw any) (any, error) {
	op, ok := raw.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	name, _ := op["op"].(string)
	path, err := pointer(op, "path")
	if err != nil {
		return nil, err
	}
	value, hasValue := op["value"]
	if !hasValue && (name == "add" || name == "replace" || name == "test") {
		return nil, fmt.Errorf("%s without value", name)
	}
	switch name {
	case "add":
		return add(doc, path, clone(value))
	case "remove":
		doc, _, err = remove(doc, path)
		return doc, err
	case "replace":
		if doc, _, err = remove(doc, path); err != nil {
			return nil, err
		}
		return add(doc, path, clone(value))
	case "move", "copy":
		from, err := pointer(op, "from")
		if err != nil {
			return nil, err
		}
		var v any
		if name == "move" {
			doc, v, err = remove(doc, from)
		} else {
			v, err = get(doc, from)
			v = clone(v)
		}
		if err != nil {
			return nil, err
		}
		return add(doc, path, v)
	case "test":
		v, err := get(doc, path)
		if err != nil {
			return nil, err
		}
		if !reflect.DeepEqual(v, value) {
			return nil, fmt.Errorf("test of %q failed", "/"+strings.Join(path, "/"))
		}
		return doc, nil
	default:
		return nil, fmt.Errorf("unknown op %q", name)
	}
}

// pointer parses the JSON pointer in member key of op into reference tokens.
func pointer(op map[string]any, key string) ([]string, error) {
	p, ok := op[key].(string)
	if !ok {
		return nil, fmt.Errorf("missing %q", key)
	}
	if p == "" {
		return []string{}, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("pointer %q does not start with /", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

// at walks doc to the container of the last token and replaces that container
// by what fn returns, so that slices may change length.
func at(doc any, toks []string, fn func(c any, key string) (any, error)) (any, error) {
	if len(toks) == 1 {
		return fn(doc, toks[0])
	}
	switch c := doc.(type) {
	case map[string]any:
		child, ok := c[toks[0]]
		if !ok {
			return nil, fmt.Errorf("no member %q", toks[0])
		}
		n, err := at(child, toks[1:], fn)
		c[toks[0]] = n
		return c, err
	case []any:
		i, err := index(toks[0], len(c)-1)
		if err != nil {
			return nil, err
		}
		n, err := at(c[i], toks[1:], fn)
		c[i] = n
		return c, err
	default:
		return nil, fmt.Errorf("cannot descend into %T at %q", doc, toks[0])
	}
}

// index parses an array index in [0, maxIndex].
func index(tok string, maxIndex int) (int, error) {
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 || i > maxIndex || (len(tok) > 1 && tok[0] == '0') {
		return 0, fmt.Errorf("bad array index %q", tok)
	}
	return i, nil
}

func add(doc any, toks []string, v any) (any, error) {
	if len(toks) == 0 {
		return v, nil
	}
	return at(doc, toks, func(c any, key string) (any, error) {
		switch c := c.(type) {
		case map[string]any:
			c[key] = v
			return c, nil
		case []any:
			if key == "-" {
				return append(c, v), nil
			}
			i, err := index(key, len(c))
			if err != nil {
				return nil, err
			}
			return append(c[:i], append([]any{v}, c[i:]...)...), nil
		default:
			return nil, fmt.Errorf("cannot add to %T", c)
		}
	})
}

func remove(doc any, toks []string) (any, any, error) {
	if len(toks) == 0 {
		return nil, nil, errors.New("cannot remove the whole document")
	}
	var removed any
	doc, err := at(doc, toks, func(c any, key string) (any, error) {
		v, i, err := member(c, key)
		if err != nil {
			return nil, err
		}
		removed = v
		if s, ok := c.([]any); ok {
			return append(s[:i], s[i+1:]...), nil
		}
		delete(c.(map[string]any), key)
		return c, nil
	})
	return doc, removed, err
}

func get(doc any, toks []string) (any, error) {
	if len(toks) == 0 {
		return doc, nil
	}
	var found any
	_, err := at(doc, toks, func(c any, key string) (v any, err error) {
		found, _, err = member(c, key)
		return c, err
	})
	return found, err
}

// member returns the existing member key of container c, and its index when c
// is an array.
func member(c any, key string) (any, int, error) {
	switch c := c.(type) {
	case map[string]any:
		v, ok := c[key]
		if !ok {
			return nil, 0, fmt.Errorf("no member %q", key)
		}
		return v, 0, nil
	case []any:
		i, err := index(key, len(c)-1)
		if err != nil {
			return nil, 0, err
		}
		return c[i], i, nil
	default:
		return nil, 0, fmt.Errorf("%T has no members", c)
	}
}
