// The README's "A complete server" block, exactly as README.md shows it, survives the clients a real
// server meets: ones that disconnect while their call is queued (the call is aborted and rejects
// with an AbortError) and bad requests (a RangeError). Either rejection, uncaught, would end the
// process; afterwards the server must still be up and answer a normal request.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { backend } from '../lib/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** The first ```js block after the paragraph that starts "A complete server". */
function readmeServerBlock(): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const at = readme.search(/^A complete server/m);
  expect(at, 'README.md has a paragraph starting "A complete server"').toBeGreaterThanOrEqual(0);
  const m = /^```js\n([\s\S]*?)^```$/m.exec(readme.slice(at));
  expect(m, 'a ```js block follows it').not.toBeNull();
  return m![1];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!existsSync(dist))('README "A complete server" (needs dist/)', () => {
  test('disconnecting clients and bad requests do not take it down', async () => {
    const code = readmeServerBlock();
    const port = await freePort();
    // The TypeScript backend (no native binary) computes on the event loop itself, ~30x slower:
    // shorter requests keep the same queueing and aborts within the test's time.
    const longRequest = backend() === 'native' ? 4096 : 256;
    // Run from the package root, so that the block's `import ... from 'qkv'` resolves to this package.
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      cwd: root, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.on('exit', (code, signal) => { exited = { code, signal }; });
    const alive = () => exited === null;
    const base = `http://127.0.0.1:${port}/attend`;
    const died = () => `server exited (${JSON.stringify(exited)}); its stderr:\n${stderr}`;
    /** A request that must be answered: a dropped connection reports why the server went away. */
    const get = async (url: string) => {
      try {
        return await fetch(url);
      } catch (err) {
        await sleep(200); // let the exit event arrive
        throw new Error(`${url}: ${(err as Error).message}; ${alive() ? 'server still running' : died()}`);
      }
    };
    try {
      // Wait until it listens.
      for (let i = 0; ; i++) {
        if (!alive()) throw new Error(died());
        try {
          if ((await fetch(`${base}?tokens=1`)).ok) break;
        } catch { /* not listening yet */ }
        if (i > 200) throw new Error(`server did not answer within 20 s\n${stderr}`);
        await sleep(100);
      }

      // Clients that ask for a long sequence and leave: a few after 3-5 ms (some before the server
      // has even read the request), the others after 150-370 ms, when the first calls are running
      // and theirs are still queued behind them, so that they are aborted and reject.
      const leaving = Array.from({ length: 12 }, async (_, i) => {
        const ac = new AbortController();
        const t = setTimeout(() => ac.abort(), i < 3 ? 3 + i : 150 + 20 * i);
        try {
          await (await fetch(`${base}?tokens=${longRequest}`, { signal: ac.signal })).text();
        } catch { /* aborted by us: expected */ } finally {
          clearTimeout(t);
        }
      });
      await Promise.all(leaving);
      await sleep(1000); // the aborted calls reject now, the started ones finish
      expect(alive(), died()).toBe(true);

      // Bad requests: the block's own RangeError (tokens out of range, not a number) and the
      // library's (1.5 tokens give an x whose length is not a multiple of E).
      for (const q of ['0', 'abc', '-3', '100000', '1.5']) {
        const r = await get(`${base}?tokens=${q}`);
        expect(r.status, `tokens=${q}`).toBe(400);
        await r.text();
      }

      // Let every queued or running call settle (a rejection would end the process by now).
      await sleep(1500);
      expect(alive(), died()).toBe(true);

      const r = await get(`${base}?tokens=16`);
      expect(r.status).toBe(200);
      const first = (await r.json()) as number[];
      expect(first).toHaveLength(4);
      expect(first.every(Number.isFinite)).toBe(true);
      expect(alive()).toBe(true);
      expect(stderr).toBe('');
    } finally {
      child.kill();
    }
  }, 120_000);
});
