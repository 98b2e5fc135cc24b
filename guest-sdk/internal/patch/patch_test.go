package patch

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func TestMergeRoundTrip(t *testing.T) {
	tests := []struct {
		name, original, modified, patch string
	}{
		{"unchanged", `{"a":1}`, `{"a":1}`, `{}`},
		{"set and remove", `{"a":1,"b":2}`, `{"a":3,"c":4}`, `{"a":3,"b":null,"c":4}`},
		{"nested", `{"m":{"x":1,"y":2}}`, `{"m":{"x":1,"y":3}}`, `{"m":{"y":3}}`},
		{"arrays are replaced whole", `{"l":[1,2]}`, `{"l":[2]}`, `{"l":[2]}`},
		{"object becomes scalar", `{"m":{"x":1}}`, `{"m":"s"}`, `{"m":"s"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := decode(t, tt.original).(map[string]any)
			mod := decode(t, tt.modified).(map[string]any)
			p := CreateMerge(orig, mod)
			if want := decode(t, tt.patch); !reflect.DeepEqual(any(p), want) {
				t.Fatalf("patch = %v, want %v", p, want)
			}
			if got := ApplyMerge(orig, p); !reflect.DeepEqual(got, any(mod)) {
				t.Fatalf("apply = %v, want %v", got, mod)
			}
			if !reflect.DeepEqual(any(orig), decode(t, tt.original)) {
				t.Fatal("original was modified")
			}
		})
	}
}

func TestApplyMergeNonObjectPatch(t *testing.T) {
	if got := ApplyMerge(decode(t, `{"a":1}`), decode(t, `[1]`)); !reflect.DeepEqual(got, decode(t, `[1]`)) {
		t.Fatalf("got %v", got)
	}
}

func TestApplyJSON(t *testing.T) {
	doc := `{"a":{"b":[1,2,3]},"c":"x","k~/":1}`
	tests := []struct {
		name, ops, want string
	}{
		{"add member", `[{"op":"add","path":"/d","value":{"e":null}}]`, `{"a":{"b":[1,2,3]},"c":"x","k~/":1,"d":{"e":null}}`},
		{"add into array", `[{"op":"add","path":"/a/b/1","value":9}]`, `{"a":{"b":[1,9,2,3]},"c":"x","k~/":1}`},
		{"append", `[{"op":"add","path":"/a/b/-","value":4}]`, `{"a":{"b":[1,2,3,4]},"c":"x","k~/":1}`},
		{"remove from array", `[{"op":"remove","path":"/a/b/0"}]`, `{"a":{"b":[2,3]},"c":"x","k~/":1}`},
		{"escaped pointer", `[{"op":"remove","path":"/k~0~1"}]`, `{"a":{"b":[1,2,3]},"c":"x"}`},
		{"replace", `[{"op":"replace","path":"/c","value":"y"}]`, `{"a":{"b":[1,2,3]},"c":"y","k~/":1}`},
		{"move", `[{"op":"move","from":"/c","path":"/a/c"}]`, `{"a":{"b":[1,2,3],"c":"x"},"k~/":1}`},
		{"copy", `[{"op":"copy","from":"/a/b/2","path":"/z"}]`, `{"a":{"b":[1,2,3]},"c":"x","k~/":1,"z":3}`},
		{"test passes", `[{"op":"test","path":"/a/b","value":[1,2,3]}]`, doc},
		{"replace whole document", `[{"op":"add","path":"","value":[]}]`, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := decode(t, doc)
			got, err := ApplyJSON(in, decode(t, tt.ops).([]any))
			if err != nil {
				t.Fatal(err)
			}
			if want := decode(t, tt.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if !reflect.DeepEqual(in, decode(t, doc)) {
				t.Fatal("input was modified")
			}
		})
	}
}

func TestApplyJSONErrors(t *testing.T) {
	for _, ops := range []string{
		`[{"op":"test","path":"/c","value":"y"}]`,
		`[{"op":"remove","path":"/missing"}]`,
		`[{"op":"replace","path":"/missing","value":1}]`,
		`[{"op":"add","path":"/a/b/7","value":1}]`,
		`[{"op":"add","path":"/a/b/01","value":1}]`,
		`[{"op":"add","path":"c","value":1}]`,
		`[{"op":"add","path":"/c/x","value":1}]`,
		`[{"op":"add","path":"/x"}]`,
		`[{"op":"copy","path":"/x"}]`,
		`[{"op":"frobnicate","path":"/c"}]`,
		`[{"op":"remove","path":""}]`,
		`[1]`,
	} {
		t.Run(ops, func(t *testing.T) {
			_, err := ApplyJSON(decode(t, `{"a":{"b":[1,2,3]},"c":"x"}`), decode(t, ops).([]any))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
