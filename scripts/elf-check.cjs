#!/usr/bin/env node
// Checks that a Linux addon binary is portable (what CMakeLists.txt's QKV_PORTABLE builds): no
// shared C++ runtime (libstdc++, libgcc_s) among its NEEDED libraries, no GLIBCXX/CXXABI version
// needs, and no glibc symbol version newer than GLIBC_2.28. Reads the ELF with binutils' readelf,
// which reads any architecture's ELF (the arm64 binary too).
//   node scripts/elf-check.cjs <file.node>...   one line per file; exit 1 if any is not portable
// scripts/prebuild.cjs calls check() on every binary before it goes into the tarball.
'use strict';
const { spawnSync } = require('node:child_process');

/** The newest glibc a binary may ask for: RHEL/Rocky 8 and Debian 10 ship 2.28. */
const MAX_GLIBC = [2, 28];

function readelf(args, file) {
  const r = spawnSync('readelf', [...args, file], { encoding: 'utf8' });
  if (r.error) throw new Error(`readelf: ${r.error.message} (it comes with binutils)`);
  if (r.status !== 0) throw new Error(`readelf ${args.join(' ')} ${file}: ${r.stderr.trim()}`);
  return r.stdout;
}

function compareVersion(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * What the binary needs from the system: { machine, needed: [soname], versions: [name], newestGlibc,
 * problems: [text] }. problems is empty for a portable binary.
 */
function check(file) {
  const machine = (/Machine:\s+(.+)/.exec(readelf(['-h'], file)) ?? [])[1]?.trim() ?? 'unknown';
  const needed = [...readelf(['-d'], file).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  // -V prints the version needs section as "File: libc.so.6 Cnt: 3" followed by "Name: GLIBC_2.17" lines.
  const versions = [...new Set([...readelf(['-V'], file).matchAll(/Name: ((?:GLIBC|GLIBCXX|CXXABI|GCC)_[0-9.]+)/g)].map((m) => m[1]))];
  const glibc = versions
    .filter((v) => v.startsWith('GLIBC_'))
    .map((v) => v.slice('GLIBC_'.length).split('.').map(Number))
    .sort(compareVersion);
  const newest = glibc.length > 0 ? glibc[glibc.length - 1] : null;
  const problems = [];
  const runtime = needed.filter((n) => /^lib(stdc\+\+|gcc_s)\./.test(n));
  if (runtime.length > 0) problems.push(`needs the shared C++ runtime (${runtime.join(', ')})`);
  const cxx = versions.filter((v) => /^(GLIBCXX|CXXABI)_/.test(v));
  if (cxx.length > 0) problems.push(`needs ${cxx.length} libstdc++ symbol versions`);
  if (newest && compareVersion(newest, MAX_GLIBC) > 0) {
    problems.push(`needs GLIBC_${newest.join('.')}, newer than GLIBC_${MAX_GLIBC.join('.')}`);
  }
  return { machine, needed, versions, newestGlibc: newest ? `GLIBC_${newest.join('.')}` : null, problems };
}

/** The newest version of each family (GLIBCXX_, CXXABI_) among names like GLIBCXX_3.4.30. */
function newestOf(versions, family) {
  const nums = versions.filter((v) => v.startsWith(`${family}_`)).map((v) => v.slice(family.length + 1).split('.').map(Number));
  return nums.length > 0 ? `${family}_${nums.sort(compareVersion)[nums.length - 1].join('.')}` : null;
}

function describe(file, result) {
  const cxx = ['GLIBCXX', 'CXXABI'].map((f) => newestOf(result.versions, f)).filter(Boolean);
  return `${file}: ${result.machine}; NEEDED ${result.needed.join(' ')}; newest ${result.newestGlibc ?? 'no glibc version'}; ` +
    `${cxx.length > 0 ? `newest ${cxx.join(', ')}` : 'no GLIBCXX/CXXABI'}${result.problems.length > 0 ? ` — NOT PORTABLE: ${result.problems.join('; ')}` : ''}`;
}

module.exports = { check, describe, MAX_GLIBC };

if (require.main === module) {
  let bad = 0;
  for (const file of process.argv.slice(2)) {
    try {
      const result = check(file);
      console.log(describe(file, result));
      if (result.problems.length > 0) bad++;
    } catch (err) {
      console.log(`${file}: ${err.message}`);
      bad++;
    }
  }
  process.exit(bad === 0 && process.argv.length > 2 ? 0 : 1);
}
