// Argument checking shared by every entry point. All messages are built here, in one format:
// "Expected <what> for <name> but received <actual>", naming the argument by the path the
// caller wrote (q, options.mask.dims). A wrong kind of value is a TypeError; a wrong size, shape
// or value is a RangeError. Array contents are never printed.
import { lengthOf, typedArrayKind } from './validate-buffer.js';

/** How a message shows a value: `Float64Array(8192)`, `-3`, `NaN`, `undefined`, `string "x"`. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  const kind = typedArrayKind(v);
  if (kind !== undefined) return `${kind}(${lengthOf(v as ArrayBufferView)})`;
  if (ArrayBuffer.isView(v)) return 'DataView';
  if (Array.isArray(v)) return `Array(${v.length})`;
  switch (typeof v) {
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return String(v);
    case 'string':
      return v.length > 40 ? 'a string' : `'${v}'`;
    case 'function':
      return 'a function';
    default:
      return (v as object).constructor?.name ? `${(v as object).constructor.name} object` : 'an object';
  }
}

export function typeError(name: string, expected: string, actual: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${name} but received ${describe(actual)}`);
}

export function rangeError(name: string, expected: string, actual: unknown): RangeError {
  return new RangeError(`Expected ${expected} for ${name} but received ${describe(actual)}`);
}

/** An environment variable that must be one of `choices` (already known to be set). */
export function expectEnvChoice<T extends string>(name: string, v: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(v)) {
    throw new RangeError(`Expected ${choices.map((c) => `'${c}'`).join(' | ')} for ${name} but received '${v}'`);
  }
  return v as T;
}

/** An environment variable that must be an integer in [lo, hi]. */
export function expectEnvInt(name: string, v: string, lo: number, hi: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) {
    throw new RangeError(`Expected an integer in [${lo}, ${hi}] for ${name} but received '${v}'`);
  }
  return n;
}

/**
 * A kernel's own guard on a length it was handed (validation happened above it; the guard keeps a
 * direct call from reading or writing past a buffer): `Expected y.length to be M*N = 12 but received 8`.
 */
export function lengthError(name: string, expected: string, actual: number): RangeError {
  return new RangeError(`Expected ${name}.length to be ${expected} but received ${actual}`);
}

/** Largest dim accepted: the native kernels index with 32-bit dims. */
export const MAX_DIM = 0x7fffffff;

/** A positive integer dimension. `undefined` or a non-number is a TypeError; 0, -3, 2.5, NaN a RangeError. */
export function expectDim(name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(name, 'a positive integer', v);
  if (!Number.isInteger(v) || v < 1 || v > MAX_DIM) throw rangeError(name, `an integer in [1, ${MAX_DIM}]`, v);
  return v;
}

export function optionalDim(name: string, v: unknown, fallback: number): number {
  return v === undefined ? fallback : expectDim(name, v);
}

/** An integer in [lo, hi]. */
export function expectInt(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number') throw typeError(name, 'an integer', v);
  if (!Number.isInteger(v) || v < lo || v > hi) throw rangeError(name, `an integer in [${lo}, ${hi}]`, v);
  return v;
}

export function expectFinite(name: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(name, 'a number', v);
  if (!Number.isFinite(v)) throw rangeError(name, 'a finite number', v);
  return v;
}

/** The largest finite float32, and the smallest normal one. */
const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38;

/**
 * A score scale: the kernels compute in float32, so it must be a finite float32 (|scale| ≤ FLT_MAX);
 * both backends then use the same value, rounded to float32 once (lib/plan.ts).
 */
export function expectScale(name: string, v: unknown): number {
  const x = expectFinite(name, v);
  if (Math.abs(x) > FLT_MAX) throw rangeError(name, `a finite float32 (|scale| <= ${FLT_MAX})`, x);
  return x;
}

/**
 * A softcap c: 0 (off) or a normal float32 (FLT_MIN ≤ c ≤ FLT_MAX), where s/c and c·tanh(s/c) stay
 * finite and exact enough in float32 on both backends; outside that the cap means nothing a float
 * can hold (a subnormal c makes 1/c overflow, a c past FLT_MAX is infinite in float32).
 */
export function expectSoftcap(name: string, v: unknown): number {
  const c = expectFinite(name, v);
  if (c < 0) throw rangeError(name, 'a number >= 0 (0 = off)', c);
  if (c !== 0 && (c < FLT_MIN || c > FLT_MAX)) {
    throw rangeError(name, `0 (off) or a float32 in [${FLT_MIN}, ${FLT_MAX}]`, c);
  }
  return c;
}

export function expectBoolean(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw typeError(name, 'a boolean', v);
  return v;
}

/** One of a fixed set of strings: a non-string is a TypeError, an unknown string a RangeError. */
export function expectChoice<T extends string>(name: string, v: unknown, choices: readonly T[]): T {
  const list = choices.map((c) => `'${c}'`).join(' | ');
  if (typeof v !== 'string') throw typeError(name, list, v);
  if (!(choices as readonly string[]).includes(v)) throw rangeError(name, list, v);
  return v as T;
}

export function expectObject(name: string, v: unknown, what = 'an object'): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) {
    throw typeError(name, what, v);
  }
  return v as Record<string, unknown>;
}

/**
 * Product of dims as a safe integer; a RangeError when it is not (dims whose product passes 2^53
 * cannot describe any buffer).
 */
export function product(name: string, dims: Record<string, number>): number {
  let p = 1;
  for (const key in dims) p *= dims[key];
  if (!Number.isSafeInteger(p)) {
    throw new RangeError(`Expected ${Object.keys(dims).join('*')} to be a safe integer for ${name} but received ${p}`);
  }
  return p;
}

/** `B*H*Sq*D = 1*8*16*64 = 8192`: the formula a length message shows. */
function formula(dims: Record<string, number>, total: number): string {
  const keys = Object.keys(dims);
  if (keys.length === 1) return `${keys[0]} = ${total}`;
  return `${keys.join('*')} = ${Object.values(dims).join('*')} = ${total}`;
}

type Ctor<T> = { new (...args: never[]): T; name: string };

/** A typed array of the given class whose length is the product of dims. */
export function expectTensor<T extends ArrayBufferView & { length: number }>(
  name: string,
  v: unknown,
  ctor: Ctor<T>,
  dims: Record<string, number>,
  hint?: (length: number) => string | undefined,
): T {
  if (typedArrayKind(v) !== ctor.name) throw typeError(name, ctor.name, v);
  const t = v as T;
  const want = product(name, dims);
  const length = lengthOf(t);
  if (length !== want) {
    const more = hint?.(length);
    throw new RangeError(`Expected ${name}.length to be ${formula(dims, want)} but received ${length}${more ? ` (${more})` : ''}`);
  }
  return t;
}

export function expectF32(
  name: string, v: unknown, dims: Record<string, number>, hint?: (length: number) => string | undefined,
): Float32Array {
  return expectTensor(name, v, Float32Array, dims, hint);
}

/**
 * An object that must take one of two exclusive forms (e.g. the separate projection weights or
 * PyTorch's in_proj form): a TypeError naming one key of each when it mixes them.
 */
export function expectOneForm(
  name: string, obj: Record<string, unknown>, a: { keys: ReadonlySet<string>; label: string }, b: { keys: ReadonlySet<string>; label: string },
): void {
  const keys = Object.keys(obj);
  const inA = keys.find((k) => a.keys.has(k));
  const inB = keys.find((k) => b.keys.has(k));
  if (inA !== undefined && inB !== undefined) {
    throw new TypeError(
      `Expected either ${a.label} or ${b.label} for ${name} but received both ('${inA}' and '${inB}'): the two forms are exclusive`,
    );
  }
}

/**
 * An options object read once: unknown names are found from its enumerable keys (no value is read
 * for that), then every known option it has (`key in obj`: own or inherited, enumerable or not,
 * class getters included) is copied into a fresh object, each getter called exactly
 * once. Everything after works on the copy, so a getter or Proxy that answers differently on a
 * second read cannot change what was checked.
 */
export function expectOptions(name: string, v: unknown, known: ReadonlySet<string>, what = 'an object'): Record<string, unknown> {
  const obj = expectObject(name, v, what);
  expectKnownKeys(name, obj, known);
  // Only known names are copied, so a plain object is safe ('__proto__' is never one of them).
  const copy: Record<string, unknown> = {};
  for (const key of known) if (key in obj) copy[key] = obj[key];
  return copy;
}

/** Rejects option names not in `known`, suggesting the closest one (catches `casual`). */
export function expectKnownKeys(name: string, obj: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const key in obj) {
    if (!known.has(key)) {
      const hint = closest(key, known);
      throw new TypeError(`Unknown option '${key}' in ${name}${hint ? ` (did you mean '${hint}'?)` : ''}`);
    }
  }
}

function closest(word: string, candidates: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The checkFinite option: a RangeError naming the first NaN or ±Infinity of `a`
 * ("Expected finite values in q but q[17] is NaN"). Nothing is written before it is thrown.
 */
export function expectAllFinite(name: string, a: Float32Array): void {
  for (let i = 0, n = lengthOf(a); i < n; i++) {
    const x = a[i];
    if (x - x !== 0) throw new RangeError(`Expected finite values in ${name} but ${name}[${i}] is ${x}`);
  }
}
