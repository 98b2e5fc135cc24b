// Package modules defines what a wre module is on the wire: its manifest
// (module.yaml, apiVersion wre.dev/v1alpha1, kind Module), the engine-wide
// Policy that caps what modules may do, and the shipping format, ConfigMaps
// labelled wre.dev/module=<name> that carry the manifest and the
// zstd-compressed wasm (docs/modules.md).
//
// Guarantees:
//   - ParseManifest decodes strictly and Validate reports every problem, each
//     naming its field ("for.resource: Required value").
//   - Package and Assemble are inverse: Assemble(Package(m, wasm)) returns m
//     (with its digest) and wasm, whatever the part size.
//   - Assemble returns wasm only from one complete set of one version: every
//     part present once, all parts of the digest of part 0, the manifest valid
//     and naming the module of the label, and the sha256 of the decompressed
//     wasm equal to the manifest's digest. Otherwise it returns an error
//     naming the ConfigMap at fault.
//   - Assemble never inflates more than the announced size nor more than
//     AssembleOptions.MaxWasmBytes, so a compression bomb costs at most that
//     much memory.
//   - StripPayload removes only the wasm of module ConfigMaps: other keys,
//     metadata and other objects are left as they were.
//   - Policy.Check refuses any permission the policy does not cover, naming
//     each one.
package modules
