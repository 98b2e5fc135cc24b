package modules_test

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wre-dev/wre/engine/modules"
)

// FuzzAssemble feeds Assemble arbitrary manifests, annotations and
// compressed bytes: it must never panic, and whatever it accepts must match
// the digest it was promised.
func FuzzAssemble(f *testing.F) {
	m := manifest(f)
	cms, err := modules.Package(m, []byte("\x00asm\x01\x00\x00\x00"), modules.PackageOptions{})
	if err != nil {
		f.Fatal(err)
	}
	cm := cms[0]
	f.Add(cm.Data[modules.KeyManifest], cm.Annotations[modules.AnnotationDigest], "0", "1", cm.Annotations[modules.AnnotationSize], cm.BinaryData[modules.KeyWasm], int64(0))
	f.Add("", "sha256:", "1", "2", "9", []byte{0x28, 0xb5, 0x2f, 0xfd}, int64(100))
	f.Fuzz(func(t *testing.T, manifest, digest, index, count, size string, chunk []byte, limit int64) {
		in := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Name:   "wre-module-demo",
				Labels: map[string]string{modules.LabelModule: "demo"},
				Annotations: map[string]string{
					modules.AnnotationDigest: digest, modules.AnnotationPart: index,
					modules.AnnotationParts: count, modules.AnnotationSize: size,
				},
			},
			Data:       map[string]string{modules.KeyManifest: manifest},
			BinaryData: map[string][]byte{modules.KeyWasm: chunk},
		}
		got, wasm, err := modules.Assemble([]*corev1.ConfigMap{in}, modules.AssembleOptions{MaxWasmBytes: limit % (1 << 20)})
		if err != nil {
			return
		}
		if modules.Digest(wasm) != got.Digest || got.Digest != digest {
			t.Fatalf("accepted wasm of digest %s for %s", modules.Digest(wasm), got.Digest)
		}
		if strconv.Itoa(len(wasm)) != size {
			t.Fatalf("accepted %d bytes, %s announced", len(wasm), size)
		}
	})
}

// FuzzRoundTrip checks that Assemble inverts Package for any wasm and part
// size.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("\x00asm"), 0)
	f.Add(make([]byte, 5000), 100)
	m := manifest(f)
	f.Fuzz(func(t *testing.T, wasm []byte, partSize int) {
		cms, err := modules.Package(m, wasm, modules.PackageOptions{PartSize: 64 + partSize%4096})
		if err != nil {
			if len(wasm) == 0 || len(wasm) > 64*(64+partSize%4096) {
				return
			}
			t.Fatal(err)
		}
		_, got, err := modules.Assemble(cms, modules.AssembleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(wasm) {
			t.Fatal("round trip changed the wasm")
		}
	})
}
