#!/usr/bin/env bash
# Pack and consume: what a user of the published package gets. Packs this tree (prepack puts the
# prebuilt binary in, postpack removes it), installs the tarball into a fresh project, from the npm
# cache where it can (--prefer-offline: the dependencies' metadata may still have to come from the
# npm registry; npm 11 does not run a dependency's install scripts, so nothing is built: the binary
# must come from prebuilds/), then checks from the consumer's side:
#   - ESM `import` and CommonJS `require` both load, use the native backend, and give the
#     hand-computed "I like apple" result; `qkv/js` too;
#   - the types resolve for an .mts and a .cts consumer (tsc, node16 resolution);
#   - the `qkv` bin runs;
#   - the tarball carries linux-x64 and linux-arm64 binaries, both portable (scripts/elf-check.cjs:
#     no shared libstdc++, nothing newer than GLIBC_2.28); npm run test:arm64 runs the arm64 one;
#   - with this platform's prebuilt binary removed (a platform without one), it still loads, on js,
#     and says why in one line, naming the platforms there are binaries for;
#   - then the install script builds it from the shipped sources (CMakeLists.txt, native/) with the
#     cmake-js installed as the package's dependency, and native loads again.
# Last line: "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
finish() { echo; echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }
check() { local name=$1; shift; local out; if out=$("$@" 2>&1); then ok "$name"; else bad "$name"; echo "$out" | sed 's/^/     /'; fi; }

cd "$root"
if tarball=$(npm pack --silent --pack-destination "$tmp" 2>"$tmp/pack.log" | tail -1) && [ -f "$tmp/$tarball" ]; then
  ok "npm pack → $tarball ($(du -h "$tmp/$tarball" | cut -f1))"
else
  bad "npm pack"; cat "$tmp/pack.log"; finish
fi
[ ! -e "$root/prebuilds" ] && ok "postpack removed prebuilds/ from the source tree" || bad "prebuilds/ left in the source tree"

plat="$(node -p 'process.platform + "-" + process.arch')"
listing=$(tar tzf "$tmp/$tarball")
missing=""
for f in dist/index.js dist/index.d.ts dist/cjs/index.js dist/cjs/index.d.ts dist/cjs/package.json dist/js.js dist/js.d.ts \
  dist/cjs/js.js dist/cjs/js.d.ts "prebuilds/$plat/qkv.node" CMakeLists.txt native/addon.cc scripts/install.cjs bin/qkv.mjs package.json; do
  grep -qx "package/$f" <<<"$listing" || missing+=" $f"
done
[ -z "$missing" ] && ok "tarball has dist/ (ESM + CJS), prebuilds/$plat, native sources, CMakeLists.txt, bin" || bad "tarball lacks:$missing"
# Packed on linux-x64, the tarball also carries the cross-built linux-arm64 binary (scripts/prebuild.cjs).
prebuilt_plats="$plat"
[ "$plat" = linux-x64 ] && prebuilt_plats="linux-x64 linux-arm64"
mkdir -p "$tmp/unpacked" && tar -xzf "$tmp/$tarball" -C "$tmp/unpacked"
for p in $prebuilt_plats; do
  f="$tmp/unpacked/package/prebuilds/$p/qkv.node"
  [ "${p%%-*}" = linux ] || continue
  if [ -f "$f" ] && line=$(node "$root/scripts/elf-check.cjs" "$f"); then ok "portable: ${line#"$tmp/unpacked/package/"}"; else bad "prebuilds/$p/qkv.node: ${line:-not in the tarball}"; fi
done

app="$tmp/app"
mkdir -p "$app" && cd "$app"
echo '{ "name": "qkv-consumer", "version": "1.0.0", "private": true }' >package.json
if npm install --prefer-offline --no-audit --no-fund "$tmp/$tarball" >"$tmp/install.log" 2>&1; then
  ok "npm install --prefer-offline <tarball> into a fresh project"
else
  bad "npm install --prefer-offline"; cat "$tmp/install.log"; finish
fi
[ ! -d node_modules/qkv/build ] && ok "no build step ran (node_modules/qkv/build absent)" || echo "note node_modules/qkv/build exists (install scripts were allowed)"

# "I like apple" (test/mha-example.test.ts): q = k = embeddings, v swaps the last two features,
# scale 1/2; apple's output = [0.93258, 0.13486, 1.64282, 0.11117].
cat >consumer.mjs <<'JS'
import { info, scaledDotProductAttention } from 'qkv';
import * as js from 'qkv/js';
const X = Float32Array.of(1, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 2);
const V = Float32Array.of(1, 0, 0, 1, 0, 2, 0, 0, 1, 0, 2, 0);
const want = [0.93258, 0.13486, 1.64282, 0.11117];
const expectBackend = process.env.EXPECT_BACKEND ?? 'native';
for (const [name, api] of [['qkv', { info, scaledDotProductAttention }], ['qkv/js', js]]) {
  const out = api.scaledDotProductAttention(X, X, V, { heads: 1, seqQ: 3, headDim: 4 });
  const apple = Array.from(out.subarray(8, 12));
  if (apple.some((x, i) => Math.abs(x - want[i]) > 1e-4)) throw new Error(`${name}: apple row ${apple} != ${want}`);
}
const i = info();
if (i.backend !== expectBackend) throw new Error(`backend ${i.backend}, expected ${expectBackend}: ${i.nativeError}`);
if (expectBackend === 'js' && !(typeof i.nativeError === 'string' && !i.nativeError.includes('\n'))) throw new Error('no one-line nativeError');
console.log(`esm ok: ${i.backend} ${i.simd}${i.nativeError ? ` (${i.nativeError})` : ''}`);
JS
cat >consumer.cjs <<'JS'
const { info, scaledDotProductAttention, MultiHeadAttention } = require('qkv');
const js = require('qkv/js');
const X = Float32Array.of(1, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 2);
const V = Float32Array.of(1, 0, 0, 1, 0, 2, 0, 0, 1, 0, 2, 0);
const want = [0.93258, 0.13486, 1.64282, 0.11117];
for (const api of [{ scaledDotProductAttention }, js]) {
  const apple = Array.from(api.scaledDotProductAttention(X, X, V, { heads: 1, seqQ: 3, headDim: 4 }).subarray(8, 12));
  if (apple.some((x, i) => Math.abs(x - want[i]) > 1e-4)) throw new Error(`apple row ${apple} != ${want}`);
}
if (typeof MultiHeadAttention !== 'function') throw new Error('MultiHeadAttention missing');
const i = info();
const expectBackend = process.env.EXPECT_BACKEND ?? 'native';
if (i.backend !== expectBackend) throw new Error(`backend ${i.backend}, expected ${expectBackend}: ${i.nativeError}`);
console.log(`cjs ok: ${i.backend} ${i.simd}`);
JS
check "ESM import: native backend, hand-computed result (qkv and qkv/js)" node consumer.mjs
check "CommonJS require: native backend, hand-computed result (qkv and qkv/js)" node consumer.cjs
check "ESM and CJS in one process share one addon" node -e "require('qkv'); import('qkv').then(m => { if (m.info().backend !== 'native') process.exit(1); })"

cat >types.mts <<'TS'
import { scaledDotProductAttention, MultiHeadAttention, info, type BackendInfo } from 'qkv';
const i: BackendInfo = info();
const out: Float32Array = scaledDotProductAttention(new Float32Array(4), new Float32Array(4), new Float32Array(4), { heads: 1, seqQ: 1, headDim: 4 });
export { i, out, MultiHeadAttention };
TS
cat >types.cts <<'TS'
import qkv = require('qkv');
import js = require('qkv/js');
const b: 'native' | 'js' = qkv.backend();
const o: Float32Array = js.scaledDotProductAttention(new Float32Array(4), new Float32Array(4), new Float32Array(4), { heads: 1, seqQ: 1, headDim: 4 });
export = { b, o };
TS
check "types resolve for ESM (.mts) and CommonJS (.cts) consumers (tsc --module node16)" \
  node "$root/node_modules/typescript/bin/tsc" --noEmit --strict --module node16 --moduleResolution node16 --target es2022 \
  --types node --typeRoots "$root/node_modules/@types" types.mts types.cts
check "bin: npx qkv info → native" bash -c 'npx --offline --no-install qkv info | tee /dev/stderr | grep -q "backend: native"'
check "bin: npx qkv explain \"I like apple\"" bash -c 'NO_COLOR=1 npx --offline --no-install qkv explain "I like apple" | grep -q "row sum 1.000"'

# A platform with no prebuilt binary and no build: remove this platform's and load again; the reason
# names the platforms the package does have binaries for. Then with no prebuilds/ at all.
if [ "$prebuilt_plats" != "$plat" ]; then
  rm -rf "node_modules/qkv/prebuilds/$plat"
  others=$(ls node_modules/qkv/prebuilds | sort | paste -sd, - | sed 's/,/, /g')
  check "no binary for $plat: the reason names the platforms there are ($others)" node -e "
    const i = require('qkv').info();
    console.log(i.nativeError);
    if (i.backend !== 'js' || !i.nativeError.includes('prebuilds/$plat/qkv.node: not found (prebuilt binaries are for $others only)')) process.exit(1);"
fi
rm -rf node_modules/qkv/prebuilds
check "no binary: loads on js with a one-line reason (ESM)" env EXPECT_BACKEND=js node consumer.mjs
check "no binary: loads on js (CJS)" env EXPECT_BACKEND=js node consumer.cjs

# A consumer whose npm runs the install script and has no loadable prebuilt: it builds from the
# shipped sources with the cmake-js the package depends on (npm does not bundle it).
check "source build from the tarball (install script, cmake-js from the consumer's node_modules) → native" bash -c '
  out=$(node node_modules/qkv/scripts/install.cjs 2>&1); echo "$out"
  [ -z "$out" ] && [ -f node_modules/qkv/build/Release/qkv.node ] && node consumer.mjs'
finish
