#!/usr/bin/env bash
# Builds the addon with extra CMake options into its own directory, never touching build/:
#   scripts/build-variant.sh <dir> [-DQKV_SANITIZE=ON] [-DQKV_WERROR=ON] [other cmake-js options]
# The sources (CMakeLists.txt, native/, package.json) are copied to <dir> and node_modules is linked
# (cmake-js finds node-addon-api and "binary": {"napi_versions"} from there), and cmake-js configures
# and builds there against the node-api-headers package, so no headers are downloaded. -D<name>=<value>
# becomes cmake-js's --CD<name>=<value>. The binary ends up in <dir>/build/Release/qkv.node.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$1"; shift
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
rm -rf "$dir/native" "$dir/build"
src="${QKV_VARIANT_SRC:-$root}"  # another source tree (e.g. a git snapshot) when set
cp -R "$src/CMakeLists.txt" "$src/native" "$dir/"
if [ -f "$src/package.json" ]; then cp "$src/package.json" "$dir/"; else cp "$root/package.json" "$dir/"; fi
ln -sfn "$root/node_modules" "$dir/node_modules"
if ! command -v cmake >/dev/null; then
  echo "build-variant: cmake is not installed (CMake >= 3.15 is needed)" >&2
  exit 1
fi
args=(rebuild --directory "$dir" --out "$dir/build" --parallel "$(nproc 2>/dev/null || echo 2)")
for a in "$@"; do
  case "$a" in
    -D*=*) args+=("--CD${a#-D}") ;;
    *) args+=("$a") ;;
  esac
done
node "$root/node_modules/cmake-js/bin/cmake-js" "${args[@]}"
