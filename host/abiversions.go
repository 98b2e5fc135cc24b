package host

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// abiMarkerPrefix starts every ABI version marker export.
const abiMarkerPrefix = "wre_abi_v"

// abiVersion describes what one ABI version requires of a module. The host
// supports every version in abiVersions side by side; a later version adds an
// entry (and, if its host functions differ, new import names in the wre module).
type abiVersion struct {
	marker  string
	exports []export
	imports map[string]signature // functions of the wre import module
}

type export struct {
	name     string
	sig      signature
	optional bool
}

type signature struct{ params, results []api.ValueType }

func (s signature) matches(d api.FunctionDefinition) bool {
	return slices.Equal(s.params, d.ParamTypes()) && slices.Equal(s.results, d.ResultTypes())
}

func (s signature) String() string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(out, ",") + ")"
	}
	return fmt.Sprintf("%s->%s", names(s.params), names(s.results))
}

func sigOf(d api.FunctionDefinition) signature {
	return signature{params: d.ParamTypes(), results: d.ResultTypes()}
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

var abiV1 = &abiVersion{
	marker: abi.MarkerV1,
	exports: []export{
		{name: abi.MarkerV1, sig: signature{}},
		{name: abi.ExportAlloc, sig: signature{[]api.ValueType{i32}, []api.ValueType{i32}}},
		{name: abi.ExportFree, sig: signature{[]api.ValueType{i32}, nil}},
		{name: abi.ExportReconcile, sig: signature{[]api.ValueType{i32, i32}, []api.ValueType{i64}}},
		{name: "_initialize", sig: signature{}, optional: true},
	},
	imports: map[string]signature{
		abi.ImportCall: {[]api.ValueType{i32, i32, i32}, []api.ValueType{i64}},
		abi.ImportLog:  {[]api.ValueType{i32, i32, i32}, nil},
	},
}

var abiVersions = map[string]*abiVersion{abiV1.marker: abiV1}

func supportedMarkers() []string {
	out := make([]string, 0, len(abiVersions))
	for m := range abiVersions {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}
