// The vitest config of scripts/test-arm64.sh: it runs test/sdpa-parity.test.ts,
// test/sdpa-semantics.test.ts, test/sdpa-modifiers.test.ts and test/rope.test.ts, copied into a fresh consumer of the packed tarball, on an arm64 Node
// under qemu-user. The tests' imports of the source tree (../lib/...) are pointed at the installed
// package instead, so they exercise its dist/ and its prebuilds/linux-arm64 binary.
import { fileURLToPath } from 'node:url';

const installed = (file) => fileURLToPath(new URL(`./node_modules/qkv/${file}`, import.meta.url));

export default {
  resolve: {
    alias: [
      { find: /^\.\.\/lib\/index\.js$/, replacement: 'qkv' },
      { find: /^\.\.\/lib\/js\.js$/, replacement: 'qkv/js' },
      // The same module instance as the one 'qkv' loads (the binding the runners switch kernels on).
      { find: /^\.\.\/lib\/backend\/select\.js$/, replacement: installed('dist/backend/select.js') },
      // Any other module of lib/ a test imports (the ABI tables, the plan, the backends): the
      // installed dist/ file of the same name, so it is the module instance 'qkv' itself uses.
      { find: /^\.\.\/lib\/(.*)$/, replacement: installed('dist/$1') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // threads, not forks: without binfmt_misc the kernel cannot exec an arm64 binary, so a child
    // process of the emulated Node would not start.
    pool: 'threads',
    // Everything runs about 10x slower under qemu.
    testTimeout: 600_000,
    reporters: ['default', './test/summary-reporter.ts'],
  },
};
