// The README's server example really runs: start it on a free port, send concurrent requests,
// check the answers, stop it.
import { spawn } from 'node:child_process';
import { expect, test } from 'vitest';
import { root } from './helpers.js';

test('examples/server.mjs answers concurrent requests', async () => {
  const child = spawn(process.execPath, ['examples/server.mjs'], { cwd: root, env: { ...process.env, PORT: '0' } });
  try {
    const base = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        const m = /listening on (http:\/\/[\d.:]+)/.exec(d.toString());
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    const answers = await Promise.all([16, 64, 128, 256].map((t) => fetch(`${base}/attend?tokens=${t}`).then((r) => r.json() as Promise<{ tokens: number; first: number[] }>)));
    answers.forEach((a, i) => {
      expect(a.tokens).toBe([16, 64, 128, 256][i]);
      expect(a.first).toHaveLength(4);
      expect(a.first.every(Number.isFinite)).toBe(true);
    });
    expect((await fetch(`${base}/attend?tokens=0`)).status).toBe(400);
  } finally {
    child.kill();
  }
});
