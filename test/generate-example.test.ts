// The README's "Generating tokens" example really runs: greedy decoding with a KV cache per layer
// agrees with recomputing from scratch, and it reports its speed. (Imports 'qkv', i.e. dist/.)
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { root } from './helpers.js';

test('examples/generate.mjs decodes with a cache and prints tokens per second', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['examples/generate.mjs'], { cwd: root });
  const lines = stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^tokens: (\d+ ){31}\d+$/);
  expect(lines[1]).toMatch(/matches full recompute: yes$/);
  const m = /^generated 32 tokens \(31 decode steps in [\d.]+ ms\): (\d+) tokens\/s \((native|js), \w+\)$/.exec(lines[2]!);
  expect(m, lines[2]).not.toBeNull();
  expect(Number(m![1])).toBeGreaterThan(0);
});
