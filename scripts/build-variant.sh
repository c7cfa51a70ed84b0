#!/usr/bin/env bash
# Builds the addon with extra gyp variables into its own directory, never touching build/:
#   scripts/build-variant.sh <dir> [-Dname=value ...]
# The sources (binding.gyp, native/) are copied to <dir>, node_modules is linked (binding.gyp asks
# node-addon-api for its targets), and node-gyp runs there with npm's nodedir, so no headers are
# downloaded. The binary ends up in <dir>/build/Release/qkv.node.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$1"; shift
mkdir -p "$dir"
rm -rf "$dir/native" "$dir/build"
src="${QKV_VARIANT_SRC:-$root}"  # another source tree (e.g. a git snapshot) when set
cp -R "$src/binding.gyp" "$src/native" "$dir/"
ln -sfn "$root/node_modules" "$dir/node_modules"
nodedir="${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}"
gyp="$root/node_modules/node-gyp/bin/node-gyp.js"
args=(rebuild -C "$dir" --jobs="$(nproc 2>/dev/null || echo 2)")
if [ -n "$nodedir" ] && [ "$nodedir" != "undefined" ] && [ "$nodedir" != "null" ]; then args+=(--nodedir="$nodedir"); fi
node "$gyp" "${args[@]}" -- "$@"
