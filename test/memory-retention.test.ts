// Scratch memory does not outlive a call with a huge shape: a call's workspace beyond what a
// thread keeps for ordinary shapes (native/util.h, kKeptScratchFloatsPerThread) is freed when the
// call ends, on the calling thread (sync) and on the pool thread that ran it (async). The calls run
// in a child process (test/fixtures/retention-child.ts) that measures its resident set after a
// warm-up, then after each huge call once everything it used is dropped and collected.
import { describe, expect, test } from 'vitest';
import { lastJsonLine, nativeBinaryBuilt, runTsx } from './helpers.js';

// ASan's allocator keeps freed memory in quarantine, so the resident set says nothing there.
const run = nativeBinaryBuilt && process.env.QKV_BACKEND !== 'js' && process.env.QKV_SANITIZED !== '1';

describe.runIf(run)('memory retention (native)', () => {
  test('a huge head dim (attention) or K (GEMM), sync or async, leaves no workspace resident', () => {
    const child = new URL('./fixtures/retention-child.ts', import.meta.url).pathname;
    const { rss } = lastJsonLine(runTsx(['--expose-gc', child], { ...process.env, QKV_THREADS: '' }));
    // MiB retained by each step: sdpa at D = 2^21 (two rows) and 2^20 (eight rows), a GEMM with
    // K = 2^20 (M = 24: a 96 MiB A block). Kept scratch grew by megabytes here before the fix
    // (16, 13, 288, 288, 96, 96 MiB on AVX2); what a thread keeps for ordinary shapes is already
    // resident after the warm-up.
    for (const step of ['sdpa2Sync', 'sdpa2Async', 'sdpa8Sync', 'sdpa8Async', 'gemmSync', 'gemmAsync']) {
      expect(rss[step], `${step}: ${JSON.stringify(rss)}`).toBeLessThan(8);
    }
    expect(rss.total, JSON.stringify(rss)).toBeLessThan(16);
  });
});
