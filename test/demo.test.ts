// The demo (`npm run demo`, `npx qkv explain`): runs bin/qkv.mjs as a user would, without colour,
// and checks what it teaches: every row of attention weights sums to 1, and the shared word keeps
// its q, k, v while its weights and output change.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const bin = fileURLToPath(new URL('../bin/qkv.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

describe.skipIf(!existsSync(dist))('qkv explain (bin/qkv.mjs, needs dist/)', () => {
  test('"I like apple": weights rows sum to 1, plain text, backend named', () => {
    const text = run('explain', 'I like apple');
    expect(text).not.toMatch(/\x1b\[/);
    expect(text).toMatch(/backend: (native|js)/);
    const rows = text.split('\n').filter((l) => /row sum \d/.test(l));
    expect(rows.length).toBe(6); // 3 tokens × 2 sentences (the example compares with "apple makes phones")
    for (const line of rows) {
      const [cells, reported] = line.split('row sum');
      const ws = cells.trim().split(/\s+/).slice(1).map(Number);
      expect(ws).toHaveLength(3);
      for (const w of ws) expect(w).toBeGreaterThanOrEqual(0);
      expect(Math.abs(ws.reduce((s, w) => s + w, 0) - 1)).toBeLessThan(2e-3);
      expect(Number(reported)).toBeCloseTo(1, 3);
    }
    expect(text).toMatch(/scaled scores/);
    expect(text.match(/identical in both sentences/g)).toHaveLength(3);
  });

  test('--compare with no shared word says so', () => {
    const text = run('explain', 'cats sleep', '--compare', 'dogs bark');
    expect(text).toMatch(/no word appears in both sentences/);
    expect(text.split('\n').filter((l) => /row sum \d/.test(l))).toHaveLength(4);
  });
});
