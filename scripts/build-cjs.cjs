#!/usr/bin/env node
// The CommonJS build, for consumers who require('qkv') on a Node without require(esm):
// tsc over lib/ with "module": "CommonJS" into dist/cjs/, a package.json there that marks the
// directory as CommonJS, and a hand-written package-root.js (lib/package-root.ts uses import.meta,
// which is a syntax error in CommonJS; every other module reaches the package root through it).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'dist', 'cjs');
fs.rmSync(out, { recursive: true, force: true });

const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
// lib/package-root.ts is reached through imports
// (its two import.meta lines carry @ts-ignore for this program); its output is overwritten below.
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.cjs.json'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

fs.writeFileSync(path.join(out, 'package.json'), '{ "type": "commonjs" }\n');
fs.writeFileSync(
  path.join(out, 'package-root.js'),
  `"use strict";
// CommonJS form of lib/package-root.ts (written by scripts/build-cjs.cjs): this file is dist/cjs/package-root.js.
Object.defineProperty(exports, "__esModule", { value: true });
exports.packageRequire = exports.packageRoot = void 0;
const path = require("node:path");
exports.packageRoot = path.join(__dirname, "..", "..") + path.sep;
exports.packageRequire = require;
`,
);
for (const f of ['package-root.js.map']) fs.rmSync(path.join(out, f), { force: true });
// Anything else still using import.meta would fail to load as CommonJS: refuse to ship it.
for (const f of fs.readdirSync(out, { recursive: true })) {
  if (!String(f).endsWith('.js')) continue;
  if (fs.readFileSync(path.join(out, String(f)), 'utf8').includes('import.meta')) {
    console.error(`build-cjs: dist/cjs/${f} uses import.meta; route it through lib/package-root.ts`);
    process.exit(1);
  }
}
