package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Kustomizations are the directories under deploy/ that users apply with
// `kubectl apply -k`, relative to the repository root.
var Kustomizations = []string{
	"deploy",
	"deploy/overlays/dev",
	"deploy/overlays/examples",
}

// ExampleModules are the modules whose ConfigMaps deploy/overlays/examples
// expects in deploy/overlays/examples/modules/<name>.yaml.
var ExampleModules = []string{"status-sync", "configmap-replicator", "app-operator"}

// RepoRoot returns the root of the wre checkout this package lives in.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Render builds the kustomization in dir (relative to the repository root)
// like `kubectl kustomize`, and returns its objects in output order.
// Components may name extra components (relative to the repository root) to
// add, as an overlay of the user's would. Module ConfigMaps that `wre package`
// has not produced yet are replaced by placeholders, so the structure of the
// examples overlay can be checked without a wre binary.
func Render(dir string, components ...string) ([]*unstructured.Unstructured, error) {
	return renderWith(dir, "", components)
}

// RenderPackaged is Render with the module ConfigMaps of the examples overlay
// taken from modulesDir/<name>.yaml (as PackageExampleModules writes them)
// instead of deploy/overlays/examples/modules, so a test applies the modules
// of this checkout without writing into it.
func RenderPackaged(dir, modulesDir string) ([]*unstructured.Unstructured, error) {
	return renderWith(dir, modulesDir, nil)
}

func renderWith(dir, modulesDir string, components []string) ([]*unstructured.Unstructured, error) {
	mem, err := copyToMemory(RepoRoot(), "deploy")
	if err != nil {
		return nil, err
	}
	if modulesDir != "" {
		for _, name := range ExampleModules {
			data, err := os.ReadFile(filepath.Join(modulesDir, name+".yaml"))
			if err != nil {
				return nil, err
			}
			if err := mem.WriteFile(examplesModulesDir+"/"+name+".yaml", data); err != nil {
				return nil, err
			}
		}
	}
	if err := stubModules(mem); err != nil {
		return nil, err
	}
	target := "/" + dir
	if len(components) > 0 {
		target = "/user-overlay"
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../" + dir + "\ncomponents:\n"
		for _, c := range components {
			k += "  - ../" + c + "\n"
		}
		if err := mem.WriteFile(target+"/kustomization.yaml", []byte(k)); err != nil {
			return nil, err
		}
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, target)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs, nil
}

// copyToMemory copies root/sub into an in-memory file system at /sub.
func copyToMemory(root, sub string) (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(filepath.Join(root, sub), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile("/"+filepath.ToSlash(rel), data)
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sub, err)
	}
	return mem, nil
}

// examplesModulesDir holds the module ConfigMaps of the examples overlay in
// the in-memory copy of deploy/.
const examplesModulesDir = "/deploy/overlays/examples/modules"

// PlaceholderAnnotation marks a module ConfigMap that Render made up because
// `wre package` had not produced the real one.
const PlaceholderAnnotation = "test.wre.dev/placeholder"

func stubModules(mem filesys.FileSystem) error {
	for _, name := range ExampleModules {
		path := examplesModulesDir + "/" + name + ".yaml"
		if mem.Exists(path) {
			continue
		}
		stub := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: wre-module-%[1]s
  namespace: wre-system
  labels:
    wre.dev/module: %[1]s
  annotations:
    %[2]s: "true"
data: {}
`, name, PlaceholderAnnotation)
		if err := mem.WriteFile(path, []byte(stub)); err != nil {
			return err
		}
	}
	return nil
}
