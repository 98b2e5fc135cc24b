package host

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero/api"
)

func TestABITableRefusesInconsistentVersions(t *testing.T) {
	changedCall := *testABI
	changedCall.imports = map[string]hostImport{"call": {sig: signature{nil, []api.ValueType{i64}}, fn: abiV1.imports["call"].fn}}
	badMarker := *testABI
	badMarker.marker = "abi_v3"
	cases := []struct {
		name     string
		versions []*abiVersion
		want     string
	}{
		{"a shared import name with another signature", []*abiVersion{abiV1, &changedCall},
			"ABI version wre_abi_v99 declares wre.call as ()->(i64), another version as (i32,i32,i32)->(i64); a changed signature needs a new name"},
		{"a version twice", []*abiVersion{abiV1, abiV1}, "ABI version wre_abi_v1 listed twice"},
		{"a marker without the prefix", []*abiVersion{&badMarker}, `marker "abi_v3" does not start with wre_abi_v`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := newABITable(c.versions)
			assert.ErrorContains(t, err, c.want)
		})
	}
	table, err := newABITable([]*abiVersion{testABI, abiV1})
	require.NoError(t, err)
	assert.Equal(t, []string{"wre_abi_v1", "wre_abi_v99"}, table.markers())
}
