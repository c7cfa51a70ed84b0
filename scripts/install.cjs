#!/usr/bin/env node
// Builds the native addon at install time. A failed build never fails the install: the pure
// TypeScript backend then serves, and info().nativeError says why native did not load.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
if (process.env.QKV_SKIP_BUILD === '1') process.exit(0);

// An installed tarball carries a prebuilt binary for the platform it was packed on
// (scripts/prebuild.cjs): when it loads here, there is nothing to build.
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'qkv.node');
if (fs.existsSync(prebuilt)) {
  try {
    require(prebuilt);
    process.exit(0);
  } catch {
    // a binary for another libc or an incompatible build: fall through and build from source
  }
}

function nodeGyp() {
  // npm passes its own bundled node-gyp; a local devDependency is the fallback.
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  } catch {
    return null;
  }
}

const gyp = nodeGyp();
const logFile = path.join(root, 'build-native.log');
let ok = false;
let reason = 'node-gyp not found';
if (gyp) {
  const r = spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, encoding: 'utf8', env: process.env });
  fs.writeFileSync(logFile, `${r.stdout ?? ''}\n${r.stderr ?? ''}\n${r.error ? String(r.error) : ''}`);
  ok = r.status === 0;
  reason = r.error ? String(r.error.message) : `node-gyp exited with ${r.status}`;
}
if (ok) {
  fs.rmSync(logFile, { force: true });
} else {
  console.warn(
    `qkv: the native addon was not built (${reason}; details in ${logFile}). ` +
      'The pure TypeScript backend will be used; it is correct but slower.',
  );
}
