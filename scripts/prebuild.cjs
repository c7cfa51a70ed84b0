#!/usr/bin/env node
// prepack: puts this platform's binary into the tarball as prebuilds/<platform>-<arch>/qkv.node,
// which lib/native.ts loads when there is no local build (a consumer whose npm does not run
// dependency install scripts). N-API (napi_versions 8), so one binary serves every Node >= 20 on
// this platform; the kernels pick AVX2/NEON at run time, so it also runs on baseline CPUs.
// `node scripts/prebuild.cjs --clean` (postpack) removes it again, so the source tree never loads a
// stale copy.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'prebuilds');
if (process.argv.includes('--clean')) {
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
const src = path.join(root, 'build', 'Release', 'qkv.node');
if (!fs.existsSync(src)) {
  console.error('qkv prepack: build/Release/qkv.node is missing; run `npm run build:native` first.');
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
