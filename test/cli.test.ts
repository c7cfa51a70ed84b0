// The command line (bin/qkv.mjs) as a user runs it: `qkv explain` names the words the two sentences
// really share, matches them the way the embedding does (ignoring case), and `qkv --version` prints
// the package's version.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const bin = fileURLToPath(new URL('../bin/qkv.mjs', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

/** The lines of the comparison section, from its heading on. */
const comparison = (text: string) => text.slice(text.indexOf('The same word in two sentences'));
/** The words the comparison shows q, k, v for, as printed ("w" or "w" / "W"). */
const sharedShown = (text: string) =>
  [...comparison(text).matchAll(/^ {2}(".*?) — its own q, k, v/gm)].map((m) => m[1]);
/** The closing line's list of words whose q, k, v differ from the second layer on. */
const closing = (text: string) => /layer on the q, k and v of (.*) differ too/.exec(text)?.[1];

test('qkv --version and -v print the version from package.json', () => {
  expect(run('--version').trim()).toBe(pkg.version);
  expect(run('-v').trim()).toBe(pkg.version);
});

describe.skipIf(!existsSync(dist))('qkv explain --compare (needs dist/)', () => {
  test('the shared word comes from the sentences: "bank"', () => {
    const text = run('explain', 'my bank is near', '--compare', 'the river bank');
    expect(sharedShown(text)).toEqual(['"bank"']);
    expect(closing(text)).toBe('"bank"');
    expect(text).not.toMatch(/apple/);
    expect(comparison(text).match(/identical in both sentences/g)).toHaveLength(3);
  });

  test('two shared words are both named: "the" and "bank"', () => {
    const text = run('explain', 'the bank of the river', '--compare', 'the bank raised rates');
    expect(sharedShown(text)).toEqual(['"the"', '"bank"']);
    expect(closing(text)).toBe('"the" and "bank"');
    expect(text).not.toMatch(/apple/);
    expect(comparison(text).match(/identical in both sentences/g)).toHaveLength(6);
  });

  test('words that differ only in case are the same word (the embedding ignores case)', () => {
    const text = run('explain', 'Apple makes phones', '--compare', 'I like apple');
    expect(text).not.toMatch(/no word appears in both sentences/);
    expect(sharedShown(text)).toEqual(['"Apple" / "apple"']);
    expect(closing(text)).toBe('"Apple"');
    expect(comparison(text).match(/identical in both sentences/g)).toHaveLength(3);
  });

  test('the default example still names "apple"', () => {
    const text = run('explain');
    expect(sharedShown(text)).toEqual(['"apple"']);
    expect(closing(text)).toBe('"apple"');
  });
});
