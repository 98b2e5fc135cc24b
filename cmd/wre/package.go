package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/wre-dev/wre/engine/modules"
)

func init() {
	register(command{name: "package", summary: "package a manifest and a .wasm as module ConfigMaps (YAML, or --apply)", run: packageCommand})
}

func packageCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := subcommandFlags("wre package", "Usage: wre package [flags] MODULE.wasm\n\nWrites the module ConfigMaps (manifest plus zstd-compressed wasm, in numbered\nparts when large) as YAML for `kubectl apply --server-side -f -`, or applies them.", stderr)
	manifestPath := fs.String("manifest", "module.yaml", "the module manifest")
	namespace := fs.String("namespace", "", "namespace of the ConfigMaps (the engine's --module-namespace)")
	partSize := fs.Int("part-size", modules.DefaultPartSize, "compressed bytes per ConfigMap (at most the default)")
	apply := fs.Bool("apply", false, "apply the ConfigMaps to the cluster (server-side apply) instead of printing them")
	kubeconfig := fs.String("kubeconfig", "", "with --apply: path to a kubeconfig; else $KUBECONFIG, the in-cluster config, then ~/.kube/config")
	positional, code, ok := parseArgs(fs, args, 1, "one .wasm file")
	if !ok {
		return code
	}
	if *apply && *namespace == "" {
		fmt.Fprintln(stderr, "wre package: --apply needs --namespace")
		return exitUsage
	}
	cms, err := packageFiles(*manifestPath, positional[0], modules.PackageOptions{Namespace: *namespace, PartSize: *partSize})
	if err != nil {
		fmt.Fprintf(stderr, "wre package: %v\n", err)
		return exitError
	}
	if *apply {
		err = applyConfigMaps(ctx, *kubeconfig, cms, stdout)
	} else {
		err = writeConfigMaps(stdout, cms)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wre package: %v\n", err)
		return exitError
	}
	return exitOK
}

// packageFiles reads and packages a manifest and a wasm file.
func packageFiles(manifestPath, wasmPath string, opts modules.PackageOptions) ([]*corev1.ConfigMap, error) {
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, err
	}
	m, err := modules.ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", manifestPath, err)
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return nil, fmt.Errorf("%s: not a wasm module (no \\0asm header)", wasmPath)
	}
	return modules.Package(m, wasm, opts)
}

var wasmMagic = []byte("\x00asm")

// packageFieldManager owns the fields of the ConfigMaps that --apply writes.
// The README's `kubectl apply --server-side --field-manager=wre-package`
// names it too, so versions shipped by either tool have one owner and the
// next one applies without conflicts.
const packageFieldManager = "wre-package"

// writeConfigMaps writes cms as a YAML stream.
func writeConfigMaps(w io.Writer, cms []*corev1.ConfigMap) error {
	for i, cm := range cms {
		out, err := yaml.Marshal(cm)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// applyConfigMaps server-side applies cms, part 0 last so that the engine
// sees the manifest of a version only once its other parts are in place.
func applyConfigMaps(ctx context.Context, kubeconfig string, cms []*corev1.ConfigMap, stdout io.Writer) error {
	cfg, err := loadConfig(kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	force := true
	for i := len(cms) - 1; i >= 0; i-- {
		cm := cms[i]
		body, err := json.Marshal(cm)
		if err != nil {
			return err
		}
		if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Patch(ctx, cm.Name, types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: packageFieldManager, Force: &force}); err != nil {
			return fmt.Errorf("apply ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
		fmt.Fprintf(stdout, "configmap/%s serverside-applied\n", cm.Name)
	}
	// Parts left over from a larger earlier version.
	name, ns := cms[0].Labels[modules.LabelModule], cms[0].Namespace
	list, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: modules.LabelModule + "=" + name})
	if err != nil {
		return fmt.Errorf("list ConfigMaps of module %s: %w", name, err)
	}
	for _, cm := range list.Items {
		if !slices.ContainsFunc(cms, func(c *corev1.ConfigMap) bool { return c.Name == cm.Name }) {
			if err := client.CoreV1().ConfigMaps(ns).Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil {
				return fmt.Errorf("delete leftover ConfigMap %s/%s: %w", ns, cm.Name, err)
			}
			fmt.Fprintf(stdout, "configmap/%s deleted\n", cm.Name)
		}
	}
	return nil
}
