#!/usr/bin/env node
// Builds the native addon at install time. A failed build never fails the install: the pure
// TypeScript backend then serves, and info().nativeError says why native did not load.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
if (process.env.QKV_SKIP_BUILD === '1') process.exit(0);

// An installed tarball carries prebuilt binaries for linux-x64 and linux-arm64 (glibc >= 2.28,
// scripts/prebuild.cjs): when this platform's loads here, there is nothing to build.
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'qkv.node');
if (fs.existsSync(prebuilt)) {
  try {
    require(prebuilt);
    process.exit(0);
  } catch {
    // musl, a glibc older than 2.28, or an incompatible build: fall through and build from source
  }
}

// cmake-js (a dependency: npm bundles node-gyp but not cmake-js) builds against the
// node-api-headers package ("binary": {"napi_versions": [8]} in package.json), so nothing is
// downloaded beyond the npm registry. It needs CMake >= 3.15 and a C++17 compiler.
function cmakeJs() {
  try {
    return require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return null;
  }
}

function cmakeVersion() {
  const r = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return (/cmake version (\S+)/.exec(r.stdout ?? '') ?? [])[1] ?? 'unknown';
}

// The first line of the output that says what went wrong, for the one-line warning.
function firstError(text) {
  const line = text.split('\n').find((l) => /\berror\b|not found|CMake Error/i.test(l) && !/^\s*-- /.test(l));
  return line ? line.trim().slice(0, 200) : null;
}

function build(logFile) {
  const cli = cmakeJs();
  if (!cli) return 'cmake-js not found in node_modules';
  const cmake = cmakeVersion();
  if (!cmake) return 'cmake is not installed (the source build needs CMake >= 3.15 and a C++17 compiler)';
  const jobs = String(os.availableParallelism?.() ?? os.cpus().length);
  const args = [cli, 'rebuild', '--directory', root, '--out', path.join(root, 'build'), '--parallel', jobs];
  // The output goes straight to the log (no pipe buffer to overflow on a long list of warnings).
  fs.writeFileSync(logFile, `$ node ${args.join(' ')}\n(cmake ${cmake})\n`);
  const fd = fs.openSync(logFile, 'a');
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', fd, fd], env: process.env });
  fs.closeSync(fd);
  if (r.status === 0 && fs.existsSync(path.join(root, 'build', 'Release', 'qkv.node'))) return null;
  const cause = r.error ? String(r.error.message) : r.status === 0 ? 'no build/Release/qkv.node' : `cmake-js exited with ${r.status ?? r.signal}`;
  const first = firstError(fs.readFileSync(logFile, 'utf8'));
  return first ? `${cause}: ${first}` : cause;
}

const logFile = path.join(root, 'build-native.log');
let reason;
try {
  fs.rmSync(logFile, { force: true });
  reason = build(logFile);
  if (reason === null) {
    // The log of a successful build stays next to it (build/ is rebuilt from scratch every time).
    fs.renameSync(logFile, path.join(root, 'build', 'build-native.log'));
  } else if (!fs.existsSync(logFile)) {
    fs.writeFileSync(logFile, `${reason}\nPATH=${process.env.PATH ?? ''}\n`);
  }
} catch (err) {
  reason = `the install script failed: ${err && err.message}`;
}
if (reason !== null) {
  console.warn(
    `qkv: the native addon was not built (${reason}; details in ${logFile}). ` +
      'The pure TypeScript backend will be used; it is correct but slower.',
  );
}
