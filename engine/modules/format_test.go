package modules_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/wre-dev/wre/engine/modules"
)

func manifest(t testing.TB) *modules.Manifest {
	t.Helper()
	m, err := modules.ParseManifest([]byte(valid))
	require.NoError(t, err)
	return m
}

// randomWasm returns n incompressible bytes, so parts split where the test
// expects.
func randomWasm(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestPackageAssembleRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name     string
		size     int
		partSize int
		parts    int
	}{
		{"one part", 1000, 0, 1},
		{"three parts", 2500, 1000, 3},
		{"two parts", 1900, 1000, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			wasm := randomWasm(c.size)
			cms, err := modules.Package(manifest(t), wasm, modules.PackageOptions{Namespace: "wre-system", PartSize: c.partSize})
			require.NoError(t, err)
			require.Len(t, cms, c.parts)
			for i, cm := range cms {
				assert.Equal(t, modules.PartName("demo", i), cm.Name)
				assert.Equal(t, "wre-system", cm.Namespace)
				assert.Equal(t, "demo", cm.Labels[modules.LabelModule])
				assert.Equal(t, modules.Digest(wasm), cm.Annotations[modules.AnnotationDigest])
				assert.Equal(t, strconv.Itoa(i), cm.Annotations[modules.AnnotationPart])
				assert.Equal(t, strconv.Itoa(c.parts), cm.Annotations[modules.AnnotationParts])
				assert.Equal(t, i == 0, cm.Data[modules.KeyManifest] != "", "only part 0 holds the manifest")
			}
			// Order does not matter.
			shuffled := append([]*corev1.ConfigMap{}, cms...)
			shuffled[0], shuffled[len(shuffled)-1] = shuffled[len(shuffled)-1], shuffled[0]
			m, got, err := modules.Assemble(shuffled, modules.AssembleOptions{})
			require.NoError(t, err)
			assert.Equal(t, wasm, got)
			assert.Equal(t, modules.Digest(wasm), m.Digest)
			assert.Equal(t, "demo", m.Name)
		})
	}
}

func TestPackageCompresses(t *testing.T) {
	wasm := bytes.Repeat([]byte("wasm"), 1<<18) // 1 MiB
	cms, err := modules.Package(manifest(t), wasm, modules.PackageOptions{})
	require.NoError(t, err)
	require.Len(t, cms, 1)
	assert.Less(t, len(cms[0].BinaryData[modules.KeyWasm]), 10<<10)
}

func TestPackageRefuses(t *testing.T) {
	m := manifest(t)
	m.Digest = modules.Digest([]byte("other"))
	_, err := modules.Package(m, []byte("wasm"), modules.PackageOptions{})
	assert.ErrorContains(t, err, "does not match the wasm")

	m = manifest(t)
	m.Name = ""
	_, err = modules.Package(m, []byte("wasm"), modules.PackageOptions{})
	assert.ErrorContains(t, err, "name: Required value")

	_, err = modules.Package(manifest(t), nil, modules.PackageOptions{})
	assert.ErrorContains(t, err, "wasm of 0 bytes")

	_, err = modules.Package(manifest(t), randomWasm(70*1000), modules.PackageOptions{PartSize: 1000})
	assert.ErrorContains(t, err, "more than 64")
}

// pkg packages wasm in parts of 1000 compressed bytes.
func pkg(t testing.TB, wasm []byte) []*corev1.ConfigMap {
	t.Helper()
	cms, err := modules.Package(manifest(t), wasm, modules.PackageOptions{PartSize: 1000})
	require.NoError(t, err)
	return cms
}

// bomb is a valid module set whose wasm is n zero bytes, with the size
// annotation claiming only announced bytes.
func bomb(t testing.TB, n, announced int) []*corev1.ConfigMap {
	t.Helper()
	wasm := make([]byte, n)
	cms := pkg(t, wasm)
	require.Len(t, cms, 1)
	cms[0].Annotations[modules.AnnotationSize] = strconv.Itoa(announced)
	return cms
}

func TestAssembleRefuses(t *testing.T) {
	v1, v2 := randomWasm(2500), randomWasm(2500)
	cases := []struct {
		name string
		cms  func() []*corev1.ConfigMap
		opts modules.AssembleOptions
		want string
	}{
		{"nothing", func() []*corev1.ConfigMap { return nil }, modules.AssembleOptions{}, "no ConfigMaps"},
		{"missing part", func() []*corev1.ConfigMap { c := pkg(t, v1); return []*corev1.ConfigMap{c[0], c[2]} },
			modules.AssembleOptions{}, "missing part 1 of 3 (ConfigMap wre-module-demo-1)"},
		{"missing manifest part", func() []*corev1.ConfigMap { return pkg(t, v1)[1:] },
			modules.AssembleOptions{}, "missing part 0"},
		{"mixed versions", func() []*corev1.ConfigMap {
			a, b := pkg(t, v1), pkg(t, v2)
			return []*corev1.ConfigMap{a[0], b[1], a[2]}
		},
			modules.AssembleOptions{}, "ConfigMap wre-module-demo-1 is part 1 of version " + modules.Digest(v2)},
		{"two manifests", func() []*corev1.ConfigMap { return append(pkg(t, v1), pkg(t, v2)[0]) },
			modules.AssembleOptions{}, "are both part 0: two versions mixed"},
		{"duplicate part 0", func() []*corev1.ConfigMap { c := pkg(t, v1); return append(c, c[0]) },
			modules.AssembleOptions{}, "are both part 0"},
		{"duplicate part", func() []*corev1.ConfigMap { c := pkg(t, v1); return append(c, c[1]) },
			modules.AssembleOptions{}, "two ConfigMaps are part 1"},
		{"other module", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			c[1].Labels[modules.LabelModule] = "other"
			return c
		}, modules.AssembleOptions{}, `ConfigMap wre-module-demo-1 belongs to module "other"`},
		{"digest mismatch", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			wrong := modules.Digest(v2)
			for _, cm := range c {
				cm.Annotations[modules.AnnotationDigest] = wrong
			}
			c[0].Data[modules.KeyManifest] = replaceDigest(t, c[0].Data[modules.KeyManifest], modules.Digest(v1), wrong)
			return c
		}, modules.AssembleOptions{}, "digest mismatch: the wasm is " + modules.Digest(v1)},
		{"manifest digest differs from annotation", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			c[0].Data[modules.KeyManifest] = replaceDigest(t, c[0].Data[modules.KeyManifest], modules.Digest(v1), modules.Digest(v2))
			return c
		}, modules.AssembleOptions{}, "differs from annotation wre.dev/digest"},
		{"corrupt chunk", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			c[1].BinaryData[modules.KeyWasm][10] ^= 0xff
			return c
		}, modules.AssembleOptions{}, "assemble module \"demo\""},
		{"invalid manifest", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			c[0].Data[modules.KeyManifest] = strings.Replace(c[0].Data[modules.KeyManifest], "concurrency: 3", "concurrency: -1", 1)
			return c
		}, modules.AssembleOptions{}, "ConfigMap wre-module-demo: invalid manifest"},
		{"manifest names another module", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			for _, cm := range c {
				cm.Labels[modules.LabelModule] = "other"
			}
			return c
		}, modules.AssembleOptions{}, `manifest names module "demo", label wre.dev/module names "other"`},
		{"bad part annotation", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			c[2].Annotations[modules.AnnotationPart] = "3"
			return c
		}, modules.AssembleOptions{}, `annotation wre.dev/part is "3", want a number from 0 to 2`},
		{"parts disagree", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			c[1].Annotations[modules.AnnotationParts] = "4"
			return c
		}, modules.AssembleOptions{}, "says 4 parts of 2500 bytes, part 0 says 3 parts"},
		{"bad digest annotation", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			c[1].Annotations[modules.AnnotationDigest] = "sha1:x"
			return c
		}, modules.AssembleOptions{}, `annotation wre.dev/digest is "sha1:x"`},
		{"empty chunk", func() []*corev1.ConfigMap {
			c := pkg(t, v1)
			delete(c[2].BinaryData, modules.KeyWasm)
			return c
		}, modules.AssembleOptions{}, "binaryData module.wasm.zst is missing or empty"},
		{"over the bound", func() []*corev1.ConfigMap { return pkg(t, v1) },
			modules.AssembleOptions{MaxWasmBytes: 2000}, "wasm of 2500 bytes exceeds the limit of 2000 bytes"},
		{"zip bomb", func() []*corev1.ConfigMap { return bomb(t, 8<<20, 1000) },
			modules.AssembleOptions{}, "more than the 1000 bytes announced (compression bomb?)"},
		{"zip bomb without size", func() []*corev1.ConfigMap {
			c := bomb(t, 1000, 1000)
			var buf bytes.Buffer
			w, err := zstd.NewWriter(&buf)
			require.NoError(t, err)
			_, err = w.Write(make([]byte, 8<<20))
			require.NoError(t, err)
			require.NoError(t, w.Close())
			c[0].BinaryData[modules.KeyWasm] = buf.Bytes()
			return c
		}, modules.AssembleOptions{}, "compression bomb?"},
		{"short", func() []*corev1.ConfigMap { return bomb(t, 1000, 2000) },
			modules.AssembleOptions{}, "1000 bytes, 2000 announced"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, wasm, err := modules.Assemble(c.cms(), c.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			incomplete := map[string]bool{"missing part": true, "missing manifest part": true, "mixed versions": true, "two manifests": true}
			assert.Equal(t, incomplete[c.name], errors.Is(err, modules.ErrIncomplete), "waiting may complete the set")
			assert.Nil(t, m)
			assert.Nil(t, wasm)
		})
	}
}

func replaceDigest(t testing.TB, manifest, old, new string) string {
	t.Helper()
	require.Contains(t, manifest, old)
	return string(bytes.Replace([]byte(manifest), []byte(old), []byte(new), 1))
}

// TestAssembleIgnoresLeftovers: after a smaller version replaced a larger one
// with kubectl apply, the extra parts of the old version remain; they must not
// block the new one.
func TestAssembleIgnoresLeftovers(t *testing.T) {
	old, cur := pkg(t, randomWasm(2500)), pkg(t, randomWasm(100))
	require.Len(t, old, 3)
	require.Len(t, cur, 1)
	_, wasm, err := modules.Assemble([]*corev1.ConfigMap{cur[0], old[1], old[2]}, modules.AssembleOptions{})
	require.NoError(t, err)
	assert.Len(t, wasm, 100)
}

func TestStripPayload(t *testing.T) {
	cms, err := modules.Package(manifest(t), randomWasm(100), modules.PackageOptions{Namespace: "wre"})
	require.NoError(t, err)
	part := cms[0]
	part.BinaryData["other"] = []byte("kept")
	want := part.DeepCopy()
	delete(want.BinaryData, modules.KeyWasm)

	got, err := modules.StripPayload(part)
	require.NoError(t, err)
	assert.Equal(t, want, got, "only the wasm goes; labels, annotations and manifest stay")

	only, err := modules.Package(manifest(t), randomWasm(100), modules.PackageOptions{})
	require.NoError(t, err)
	got, err = modules.StripPayload(only[0])
	require.NoError(t, err)
	assert.Nil(t, got.(*corev1.ConfigMap).BinaryData)
	_, _, err = modules.Assemble([]*corev1.ConfigMap{got.(*corev1.ConfigMap)}, modules.AssembleOptions{})
	assert.ErrorContains(t, err, "binaryData module.wasm.zst is missing", "a stripped set cannot be assembled")

	plain := &corev1.ConfigMap{BinaryData: map[string][]byte{modules.KeyWasm: []byte("not a module")}}
	got, err = modules.StripPayload(plain)
	require.NoError(t, err)
	assert.Equal(t, []byte("not a module"), got.(*corev1.ConfigMap).BinaryData[modules.KeyWasm], "unlabelled ConfigMaps pass unchanged")
	secret := &corev1.Secret{}
	got, err = modules.StripPayload(secret)
	require.NoError(t, err)
	assert.Same(t, secret, got)
}
