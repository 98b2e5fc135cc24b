package modules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/klauspost/compress/zstd"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels, annotations and keys of module ConfigMaps.
const (
	// LabelModule marks a module ConfigMap; its value is the module name.
	LabelModule = "wre.dev/module"
	// AnnotationDigest is "sha256:<hex>" of the uncompressed wasm, on every part.
	AnnotationDigest = "wre.dev/digest"
	// AnnotationPart is the index of the part, from "0".
	AnnotationPart = "wre.dev/part"
	// AnnotationParts is the number of parts of the set.
	AnnotationParts = "wre.dev/parts"
	// AnnotationSize is the size of the uncompressed wasm in bytes.
	AnnotationSize = "wre.dev/size"
	// KeyManifest holds the manifest (YAML) in data of part 0.
	KeyManifest = "module.yaml"
	// KeyWasm holds the part's chunk of the zstd-compressed wasm in binaryData.
	KeyWasm = "module.wasm.zst"
)

// Size limits of the shipping format.
const (
	// DefaultPartSize is the compressed wasm one ConfigMap carries: below the
	// 1 MiB a ConfigMap may hold, leaving room for the manifest.
	DefaultPartSize = 900 << 10
	// MaxParts bounds the parts of one module.
	MaxParts = 64
	// DefaultMaxWasmBytes bounds the uncompressed wasm Assemble accepts.
	DefaultMaxWasmBytes = 64 << 20
)

// ErrIncomplete is matched (errors.Is) by the Assemble errors that a
// ConfigMap set shows while it is being applied: a missing part, or parts of
// two versions. Other errors do not go away by waiting.
var ErrIncomplete = errors.New("incomplete set of module ConfigMaps")

// incompleteError is an Assemble error that matches ErrIncomplete.
type incompleteError struct{ msg string }

func (e *incompleteError) Error() string        { return e.msg }
func (e *incompleteError) Is(target error) bool { return target == ErrIncomplete }

func incomplete(format string, args ...any) error {
	return &incompleteError{msg: fmt.Sprintf(format, args...)}
}

// Digest returns "sha256:<hex>" of wasm, the form Manifest.Digest and
// AnnotationDigest use.
func Digest(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PartName returns the name of part i of module name's ConfigMaps:
// "wre-module-<name>" for part 0, "wre-module-<name>-<i>" for the others.
func PartName(name string, i int) string {
	if i == 0 {
		return "wre-module-" + name
	}
	return fmt.Sprintf("wre-module-%s-%d", name, i)
}

// PackageOptions configure Package.
type PackageOptions struct {
	// Namespace of the ConfigMaps. Defaults to none (the namespace of kubectl).
	Namespace string
	// PartSize is the compressed bytes per ConfigMap. Defaults to
	// DefaultPartSize (900 KiB); at most that.
	PartSize int
	// Level is the zstd level. Defaults to zstd.SpeedBestCompression.
	Level zstd.EncoderLevel
}

// Package validates m, compresses wasm and returns the ConfigMaps that ship
// them, part 0 first. The returned manifest in part 0 carries the digest of
// wasm; if m already names a digest, it must be that of wasm.
func Package(m *Manifest, wasm []byte, opts PackageOptions) ([]*corev1.ConfigMap, error) {
	if opts.PartSize <= 0 || opts.PartSize > DefaultPartSize {
		opts.PartSize = DefaultPartSize
	}
	if opts.Level == 0 {
		opts.Level = zstd.SpeedBestCompression
	}
	mc := *m
	digest := Digest(wasm)
	if mc.Digest != "" && mc.Digest != digest {
		return nil, fmt.Errorf("package module %q: manifest digest %s does not match the wasm (%s)", m.Name, mc.Digest, digest)
	}
	mc.Digest = digest
	if err := mc.Validate(); err != nil {
		return nil, fmt.Errorf("package module %q: %w", m.Name, err)
	}
	if len(wasm) == 0 || len(wasm) > DefaultMaxWasmBytes {
		return nil, fmt.Errorf("package module %q: wasm of %d bytes: must be 1 to %d bytes", m.Name, len(wasm), DefaultMaxWasmBytes)
	}
	manifest, err := mc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("package module %q: %w", m.Name, err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(opts.Level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("package module %q: %w", m.Name, err)
	}
	compressed := enc.EncodeAll(wasm, nil)
	_ = enc.Close()
	chunks := slices.Collect(slices.Chunk(compressed, opts.PartSize))
	if len(chunks) > MaxParts {
		return nil, fmt.Errorf("package module %q: %d compressed bytes need %d parts, more than %d", m.Name, len(compressed), len(chunks), MaxParts)
	}
	cms := make([]*corev1.ConfigMap, len(chunks))
	for i, chunk := range chunks {
		cm := &corev1.ConfigMap{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      PartName(mc.Name, i),
				Namespace: opts.Namespace,
				Labels:    map[string]string{LabelModule: mc.Name},
				Annotations: map[string]string{
					AnnotationDigest: digest,
					AnnotationPart:   strconv.Itoa(i),
					AnnotationParts:  strconv.Itoa(len(chunks)),
					AnnotationSize:   strconv.Itoa(len(wasm)),
				},
			},
			BinaryData: map[string][]byte{KeyWasm: chunk},
		}
		if i == 0 {
			cm.Data = map[string]string{KeyManifest: string(manifest)}
		}
		cms[i] = cm
	}
	return cms, nil
}

// StripPayload is a cache.TransformFunc (client-go tools/cache) for
// ConfigMap informers: it removes the compressed wasm (binaryData
// module.wasm.zst) from ConfigMaps labelled LabelModule and leaves everything
// else, metadata and manifest included, as it was. A cache prepared with it
// holds no copy of any module's wasm; Assemble needs ConfigMaps read from
// the API server. Other objects pass unchanged.
func StripPayload(obj any) (any, error) {
	if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Labels[LabelModule] != "" {
		delete(cm.BinaryData, KeyWasm)
		if len(cm.BinaryData) == 0 {
			cm.BinaryData = nil
		}
	}
	return obj, nil
}

// AssembleOptions configure Assemble.
type AssembleOptions struct {
	// MaxWasmBytes bounds the uncompressed wasm, against compression bombs.
	// Defaults to DefaultMaxWasmBytes (64 MiB).
	MaxWasmBytes int64
}

// part is one module ConfigMap with its annotations parsed.
type part struct {
	cm     *corev1.ConfigMap
	digest string
	index  int
	count  int
	size   int64
}

// Assemble checks that cms, the ConfigMaps of one module, form one complete
// set of one version, decompresses the wasm within the size bound and verifies
// its digest. Parts of another digest whose index lies beyond the set
// (leftovers of a larger earlier version) are ignored; any other mix of
// versions, a missing or duplicate part, a bad manifest or a digest mismatch
// is an error that names the ConfigMap.
func Assemble(cms []*corev1.ConfigMap, opts AssembleOptions) (*Manifest, []byte, error) {
	if opts.MaxWasmBytes <= 0 {
		opts.MaxWasmBytes = DefaultMaxWasmBytes
	}
	if len(cms) == 0 {
		return nil, nil, errors.New("assemble module: no ConfigMaps")
	}
	name := cms[0].Labels[LabelModule]
	parts := make([]part, 0, len(cms))
	var first *part
	for _, cm := range cms {
		if got := cm.Labels[LabelModule]; got != name {
			return nil, nil, fmt.Errorf("assemble module %q: ConfigMap %s belongs to module %q", name, cm.Name, got)
		}
		p, err := parsePart(cm)
		if err != nil {
			return nil, nil, fmt.Errorf("assemble module %q: %w", name, err)
		}
		parts = append(parts, p)
		if p.index == 0 {
			if first != nil && first.digest == p.digest {
				return nil, nil, fmt.Errorf("assemble module %q: ConfigMaps %s and %s are both part 0", name, first.cm.Name, cm.Name)
			}
			if first != nil {
				return nil, nil, incomplete("assemble module %q: ConfigMaps %s (%s) and %s (%s) are both part 0: two versions mixed", name, first.cm.Name, first.digest, cm.Name, p.digest)
			}
			first = &parts[len(parts)-1]
		}
	}
	if first == nil {
		return nil, nil, incomplete("assemble module %q: missing part 0 (the ConfigMap with the manifest)", name)
	}
	m, err := ParseManifest([]byte(first.cm.Data[KeyManifest]))
	if err != nil {
		return nil, nil, fmt.Errorf("assemble module %q: ConfigMap %s: %w", name, first.cm.Name, err)
	}
	switch {
	case m.Name != name:
		return nil, nil, fmt.Errorf("assemble module %q: ConfigMap %s: manifest names module %q, label %s names %q", name, first.cm.Name, m.Name, LabelModule, name)
	case m.Digest != first.digest:
		return nil, nil, fmt.Errorf("assemble module %q: ConfigMap %s: manifest digest %q differs from annotation %s %q", name, first.cm.Name, m.Digest, AnnotationDigest, first.digest)
	case first.size > opts.MaxWasmBytes:
		return nil, nil, fmt.Errorf("assemble module %q: wasm of %d bytes exceeds the limit of %d bytes", name, first.size, opts.MaxWasmBytes)
	}
	chunks := make([][]byte, first.count)
	for _, p := range parts {
		switch {
		case p.digest != first.digest && p.index >= first.count:
			continue // leftover of an earlier, larger version
		case p.digest != first.digest:
			return nil, nil, incomplete("assemble module %q: ConfigMap %s is part %d of version %s, part 0 is of version %s: two versions mixed", name, p.cm.Name, p.index, p.digest, first.digest)
		case p.count != first.count || p.size != first.size:
			return nil, nil, fmt.Errorf("assemble module %q: ConfigMap %s says %d parts of %d bytes, part 0 says %d parts of %d bytes", name, p.cm.Name, p.count, p.size, first.count, first.size)
		case chunks[p.index] != nil:
			return nil, nil, fmt.Errorf("assemble module %q: two ConfigMaps are part %d (one is %s)", name, p.index, p.cm.Name)
		}
		chunks[p.index] = p.cm.BinaryData[KeyWasm]
	}
	for i, c := range chunks {
		if c == nil {
			return nil, nil, incomplete("assemble module %q: missing part %d of %d (ConfigMap %s)", name, i, first.count, PartName(name, i))
		}
	}
	wasm, err := decompress(bytes.Join(chunks, nil), min(first.size, opts.MaxWasmBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("assemble module %q: %w", name, err)
	}
	if got := Digest(wasm); got != m.Digest {
		return nil, nil, fmt.Errorf("assemble module %q: digest mismatch: the wasm is %s, the manifest says %s", name, got, m.Digest)
	}
	return m, wasm, nil
}

// parsePart reads the annotations of a module ConfigMap.
func parsePart(cm *corev1.ConfigMap) (part, error) {
	p := part{cm: cm, digest: cm.Annotations[AnnotationDigest]}
	if !digestPattern.MatchString(p.digest) {
		return p, fmt.Errorf("ConfigMap %s: annotation %s is %q, want sha256:<64 hex digits>", cm.Name, AnnotationDigest, p.digest)
	}
	var err error
	if p.count, err = intAnnotation(cm, AnnotationParts, 1, MaxParts); err != nil {
		return p, err
	}
	if p.index, err = intAnnotation(cm, AnnotationPart, 0, p.count-1); err != nil {
		return p, err
	}
	size, err := intAnnotation(cm, AnnotationSize, 1, 1<<40)
	if err != nil {
		return p, err
	}
	p.size = int64(size)
	if len(cm.BinaryData[KeyWasm]) == 0 {
		return p, fmt.Errorf("ConfigMap %s: binaryData %s is missing or empty", cm.Name, KeyWasm)
	}
	return p, nil
}

func intAnnotation(cm *corev1.ConfigMap, key string, lo, hi int) (int, error) {
	v, err := strconv.Atoi(cm.Annotations[key])
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("ConfigMap %s: annotation %s is %q, want a number from %d to %d", cm.Name, key, cm.Annotations[key], lo, hi)
	}
	return v, nil
}

// decompress inflates zstd data, failing as soon as the output would exceed
// size bytes or when it ends short of them.
func decompress(data []byte, size int64) ([]byte, error) {
	dec, err := zstd.NewReader(bytes.NewReader(data),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(max(size, zstd.MinWindowSize))),
		zstd.WithDecoderMaxWindow(uint64(min(max(size, zstd.MinWindowSize), zstd.MaxWindowSize))))
	if err != nil {
		return nil, fmt.Errorf("decompress wasm: %w", err)
	}
	defer dec.Close()
	out := bytes.NewBuffer(make([]byte, 0, size))
	n, err := io.Copy(out, io.LimitReader(dec, size+1))
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || n > size:
		return nil, fmt.Errorf("decompress wasm: more than the %d bytes announced (compression bomb?)", size)
	case err != nil:
		return nil, fmt.Errorf("decompress wasm: %w", err)
	case n < size:
		return nil, fmt.Errorf("decompress wasm: %d bytes, %d announced", n, size)
	}
	return out.Bytes(), nil
}
