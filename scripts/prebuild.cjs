#!/usr/bin/env node
// prepack: puts the prebuilt binaries into the tarball as prebuilds/<platform>-<arch>/qkv.node,
// which lib/backend/native.ts loads when there is no local build (a consumer whose npm does not run
// dependency install scripts). N-API (napi_versions 8), so one binary serves every Node >= 20 on
// its platform; the kernels pick AVX2/AVX-512/NEON at run time, so it also runs on baseline CPUs.
//
// Targets: this platform's binary (built into build/prebuild-<platform>, with QKV_PORTABLE on Linux;
// build/Release stays the local build of npm install), and on linux-x64 also linux-arm64,
// cross-compiled with Debian's aarch64-linux-gnu-g++ (cmake/aarch64-linux-gnu.cmake) into
// build/prebuild-linux-arm64. QKV_PREBUILD_TARGETS=linux-x64 (a comma list) packs fewer; a
// default target whose compiler is missing fails the pack rather than ship a tarball without it.
// Every Linux binary must pass scripts/elf-check.cjs (no shared C++ runtime, glibc <= 2.28), and
// this platform's must load here.
//
// `node scripts/prebuild.cjs --clean` (postpack) removes prebuilds/ again, so the source tree never
// loads a stale copy.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const elf = require('./elf-check.cjs');

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'prebuilds');
if (process.argv.includes('--clean')) {
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

function fail(message) {
  console.error(`qkv prepack: ${message}`);
  process.exit(1);
}

const host = `${process.platform}-${process.arch}`;
/** Cross builds this host can make: the compiler they need and the cmake-js arguments. */
const CROSS = {
  'linux-arm64': {
    hosts: ['linux-x64'],
    compiler: 'aarch64-linux-gnu-g++',
    install: 'apt-get install g++-aarch64-linux-gnu',
    args: ['--arch', 'arm64', `--CDCMAKE_TOOLCHAIN_FILE=${path.join(root, 'cmake', 'aarch64-linux-gnu.cmake')}`],
  },
};
const defaults = [host, ...Object.keys(CROSS).filter((t) => CROSS[t].hosts.includes(host))];
const targets = process.env.QKV_PREBUILD_TARGETS ? process.env.QKV_PREBUILD_TARGETS.split(',').map((t) => t.trim()).filter(Boolean) : defaults;
for (const t of targets) {
  if (t !== host && !(CROSS[t] && CROSS[t].hosts.includes(host))) fail(`cannot build ${t} on ${host} (QKV_PREBUILD_TARGETS=${targets.join(',')})`);
}

let cli;
try {
  cli = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
} catch {
  fail('cmake-js is not installed; run `npm install` first.');
}
const jobs = String(os.availableParallelism?.() ?? os.cpus().length);

// cmake-js compile: configures when <out> has no CMake cache, otherwise an incremental build (a no-op
// when nothing changed), so the tarball never carries a binary older than the native/ sources.
function compile(out, extra) {
  const r = spawnSync(process.execPath, [cli, 'compile', '--directory', root, '--out', out, '--parallel', jobs, ...extra], {
    cwd: root,
    stdio: ['ignore', 2, 2], // npm pack prints the tarball's name on stdout: keep it clean
  });
  const binary = path.join(out, 'Release', 'qkv.node');
  if (r.status !== 0 || !fs.existsSync(binary)) {
    fail(`the native build into ${path.relative(root, out)} failed (cmake-js compile: ${r.error ? r.error.message : `exit ${r.status}`}); CMake >= 3.15 and a C++17 compiler are needed.`);
  }
  return binary;
}

function onPath(program) {
  return spawnSync(program, ['--version'], { stdio: 'ignore' }).status === 0;
}

const built = [];
for (const target of targets) {
  let binary;
  if (target === host) {
    // Its own build directory: build/ holds the local (not portable) build of npm install.
    binary = compile(path.join(root, 'build', `prebuild-${target}`), ['--CDQKV_PORTABLE=ON']);
    // Refuse to ship a binary that does not load here.
    try {
      require(binary);
    } catch (err) {
      fail(`${path.relative(root, binary)} does not load: ${err.message}`);
    }
  } else {
    const cross = CROSS[target];
    if (!onPath(cross.compiler)) {
      fail(`the ${target} prebuild needs ${cross.compiler} (Debian: ${cross.install}); ` +
        `to pack without it, set QKV_PREBUILD_TARGETS=${targets.filter((t) => t !== target).join(',')}`);
    }
    binary = compile(path.join(root, 'build', `prebuild-${target}`), [...cross.args, '--CDQKV_PORTABLE=ON']);
  }
  if (target.startsWith('linux-')) {
    let result;
    try {
      result = elf.check(binary);
    } catch (err) {
      fail(err.message);
    }
    if (result.problems.length > 0) {
      fail(`${elf.describe(path.relative(root, binary), result)} (CMakeLists.txt's QKV_PORTABLE must be ON)`);
    }
    console.error(`qkv prepack: ${elf.describe(`prebuilds/${target}/qkv.node`, result)}`);
  }
  built.push([target, binary]);
}

fs.rmSync(dir, { recursive: true, force: true });
for (const [target, binary] of built) {
  fs.mkdirSync(path.join(dir, target), { recursive: true });
  fs.copyFileSync(binary, path.join(dir, target, 'qkv.node'));
  console.error(`qkv prepack: prebuilds/${target}/qkv.node (${fs.statSync(binary).size} bytes)`);
}
