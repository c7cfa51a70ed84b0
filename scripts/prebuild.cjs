#!/usr/bin/env node
// prepack: puts this platform's binary into the tarball as prebuilds/<platform>-<arch>/qkv.node,
// which lib/backend/native.ts loads when there is no local build (a consumer whose npm does not run
// dependency install scripts). N-API (napi_versions 8), so one binary serves every Node >= 20 on
// this platform; the kernels pick AVX2/NEON at run time, so it also runs on baseline CPUs.
// `node scripts/prebuild.cjs --clean` (postpack) removes it again, so the source tree never loads a
// stale copy.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'prebuilds');
if (process.argv.includes('--clean')) {
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
const src = path.join(root, 'build', 'Release', 'qkv.node');
// Bring build/ up to date with the sources first (cmake-js compile: configures when build/ has no
// CMake cache, otherwise an incremental build, a no-op when nothing changed), so the tarball never
// carries a binary older than the native/ sources it ships.
let cli;
try {
  cli = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  console.error('qkv prepack: cmake-js is not installed; run `npm install` first.');
  process.exit(1);
}
const jobs = String(os.availableParallelism?.() ?? os.cpus().length);
const r = spawnSync(process.execPath, [cli, 'compile', '--directory', root, '--out', path.join(root, 'build'), '--parallel', jobs], {
  cwd: root,
  stdio: ['ignore', 2, 2], // npm pack prints the tarball's name on stdout: keep it clean
});
if (r.status !== 0 || !fs.existsSync(src)) {
  console.error(`qkv prepack: the native build failed (cmake-js compile: ${r.error ? r.error.message : `exit ${r.status}`}); CMake >= 3.15 and a C++17 compiler are needed.`);
  process.exit(1);
}
// Refuse to ship a binary that does not load here.
try {
  require(src);
} catch (err) {
  console.error(`qkv prepack: build/Release/qkv.node does not load: ${err.message}`);
  process.exit(1);
}
const target = path.join(dir, `${process.platform}-${process.arch}`);
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(target, { recursive: true });
fs.copyFileSync(src, path.join(target, 'qkv.node'));
console.error(`qkv prepack: prebuilds/${process.platform}-${process.arch}/qkv.node (${fs.statSync(src).size} bytes)`);
