#!/bin/sh
# Builds the example modules under modules/ to wasm and packages each one as
# module ConfigMaps in deploy/overlays/examples/modules/<name>.yaml, which
# deploy/overlays/examples applies; `make deploy-examples` runs it.
#
# WRE names the wre binary (default: bin/wre, built by `make image-binary`).
set -eu

root=$(cd "$(dirname "$0")/../../.." && pwd)
wre=${WRE:-$root/bin/wre}
out=$root/deploy/overlays/examples/modules
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for name in status-sync configmap-replicator app-operator; do
	"$wre" build "$root/modules/$name" -o "$tmp/$name.wasm"
	"$wre" package --namespace wre-system \
		--manifest "$root/modules/$name/module.yaml" \
		"$tmp/$name.wasm" >"$out/$name.yaml.tmp"
	mv "$out/$name.yaml.tmp" "$out/$name.yaml"
	echo "packaged $name -> ${out#"$root"/}/$name.yaml"
done
