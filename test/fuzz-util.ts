// Shared pieces of the fuzz tests: a seeded PRNG (every call reproducible from its seed and
// index), buffers of every backing kind, and the checks every fuzzed call must pass.

import { makeRng } from './reference.js';

/** mulberry32 (test/reference.ts): the same seed gives the same calls. */
export const prng = makeRng;

/** The seed of a run: QKV_FUZZ_SEED when set (to replay a failure), else a fixed one. */
export const FUZZ_SEED = process.env.QKV_FUZZ_SEED ? Number(process.env.QKV_FUZZ_SEED) : 0x51c0ffee;

/** Wall-clock budget of one fuzz loop, in ms (QKV_FUZZ_SCALE multiplies it). */
export function budget(ms: number): number {
  const scale = process.env.QKV_FUZZ_SCALE ? Number(process.env.QKV_FUZZ_SCALE) : 1;
  return ms * scale;
}

export class Gen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = prng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)];
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  /** n floats in [-1, 1), on a backing picked at random: plain, offset view, shared, resizable. */
  f32(n: number, kind: BufferKind = this.pick(BUFFER_KINDS)): Float32Array {
    const a = makeF32(n, kind);
    for (let i = 0; i < n; i++) a[i] = this.r() * 2 - 1;
    return a;
  }
}

export type BufferKind = 'plain' | 'offset4' | 'offset12' | 'shared' | 'shared-offset' | 'resizable';
export const BUFFER_KINDS: readonly BufferKind[] = ['plain', 'plain', 'plain', 'offset4', 'offset12', 'shared', 'shared-offset', 'resizable'];

/** A Float32Array of n elements over the given kind of buffer (all valid inputs). */
export function makeF32(n: number, kind: BufferKind): Float32Array {
  switch (kind) {
    case 'plain':
      return new Float32Array(n);
    case 'offset4':
      return new Float32Array(new ArrayBuffer(4 * (n + 2)), 4, n);
    case 'offset12':
      return new Float32Array(new ArrayBuffer(4 * (n + 5)), 12, n);
    case 'shared':
      return new Float32Array(new SharedArrayBuffer(4 * n));
    case 'shared-offset':
      return new Float32Array(new SharedArrayBuffer(4 * (n + 3)), 8, n);
    case 'resizable': {
      // Length-tracking view over a resizable buffer (Node 20 has them; the ES2022 lib types do not).
      const Ctor = ArrayBuffer as unknown as new (len: number, opts: { maxByteLength: number }) => ArrayBuffer;
      return new Float32Array(new Ctor(4 * n, { maxByteLength: 4 * n + 64 }));
    }
  }
}

/** A Float32Array whose buffer has been transferred away (length 0, detached). */
export function detached(n: number): Float32Array {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

/** |a - b| <= 1e-5 + 1e-4·|b| everywhere (NaN matches NaN). Returns the first bad index or -1. */
export function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= 1e-5 + 1e-4 * Math.abs(y))) return i;
  }
  return -1;
}

/** The thrown value is a TypeError/RangeError whose message names an argument in the house format. */
export function namesArgument(err: unknown): boolean {
  if (!(err instanceof TypeError || err instanceof RangeError)) return false;
  return ARG_MESSAGE.test(err.message);
}

const ARG_MESSAGE = new RegExp(
  [
    String.raw`^Expected .+ for \S.* but received .*$`,
    String.raw`^Expected .+ for \w+$`,
    String.raw`^Expected \S+ to be .+ but received .*$`,
    String.raw`^Expected [\w.\[\]]+ not to overlap [\w.\[\]]+ but they share memory$`,
    String.raw`^Unknown option '[^']+' in [\w.]+`,
    String.raw`^Could not allocate \S+`,
    String.raw`^Expected finite values in [\w.\[\]]+ but [\w.\[\]]+\[\d+\] is`,
  ].join('|'),
  's',
);

/** A copy of a typed array's contents (or null when it cannot be read). */
export function snapshot(a: unknown): Float32Array | null {
  if (!(a instanceof Float32Array) || a.byteLength === 0) return null; // byteLength: see lengthOf in lib/validate.ts
  return Float32Array.from(a);
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Short text of an argument for a failure report (never the contents of big arrays). */
export function show(v: unknown, depth = 0): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) {
    const t = v as unknown as { length: number; byteOffset: number; buffer: ArrayBufferLike };
    const shared = typeof SharedArrayBuffer !== 'undefined' && t.buffer instanceof SharedArrayBuffer ? ',shared' : '';
    const n = (v as unknown as { byteLength: number }).byteLength / ((v as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1);
    return `${v.constructor.name}(${n}@${t.byteOffset}${shared})`;
  }
  if (Array.isArray(v)) return depth > 2 ? 'Array' : `[${v.map((x) => show(x, depth + 1)).join(', ')}]`;
  if (typeof v === 'object') {
    if (depth > 2) return '{…}';
    return `{ ${Object.entries(v as object).map(([k, x]) => `${k}: ${show(x, depth + 1)}`).join(', ')} }`;
  }
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}
