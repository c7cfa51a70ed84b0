// Checks and messages of the KV cache: createCache's options (and a restored export), a cache
// handed to a layer's forward, the options a cache excludes, the room left in it, and truncate.
import type { KVCacheDType, KVCacheExport, KVCacheOptions } from './types.js';
import {
  expectBoolean, expectDim, expectF32, expectOptions, expectTensor, optionalDim,
  product, rangeError, typeError,
} from './validate.js';
import { lengthOf, snapshotInt32, typedArrayKind } from './validate-buffer.js';

const CACHE_OPTIONS = new Set(['batch', 'maxLength', 'dtype', 'from']);
const EXPORT_KEYS = new Set(['k', 'v', 'lengths']);
const CACHE_DTYPES: readonly KVCacheDType[] = ['float32', 'float16'];
/** Options that have no meaning with a cache (it decides the keys, their lengths and the causal rule). */
const NOT_WITH_CACHE = ['mask', 'kvLengths', 'context', 'needWeights', 'averageWeights'] as const;

/** createCache's options after their checks; `from` (when given) holds L = max(lengths) positions. */
export interface CheckedCacheOptions {
  B: number;
  maxLength: number;
  dtype: KVCacheDType;
  from: KVCacheExport | null;
  L: number;
}

/** layer.createCache(options) for a layer of Hkv kv heads of Dh values. */
export function expectCacheOptions(options: unknown, Hkv: number, Dh: number): CheckedCacheOptions {
  const o = expectOptions('options', options, CACHE_OPTIONS) as Partial<KVCacheOptions> & Record<string, unknown>;
  const dtype = o.dtype === undefined ? 'float32' : expectCacheDtype(o.dtype);
  const maxLength = expectDim('options.maxLength', o.maxLength);
  let from: KVCacheExport | null = null;
  let B: number;
  let L = 0;
  if (o.from === undefined) {
    B = optionalDim('options.batch', o.batch, 1);
  } else {
    const f = expectOptions('options.from', o.from, EXPORT_KEYS) as Partial<KVCacheExport> & Record<string, unknown>;
    if (typedArrayKind(f.lengths) !== 'Int32Array') throw typeError('options.from.lengths', 'Int32Array', f.lengths);
    B = optionalDim('options.batch', o.batch, lengthOf(f.lengths as Int32Array));
    const lengths = snapshotInt32(expectTensor('options.from.lengths', f.lengths, Int32Array, { B }));
    for (let b = 0; b < B; b++) {
      const n = lengths[b]!;
      if (n < 0 || n > maxLength) throw rangeError(`options.from.lengths[${b}]`, `an integer in [0, maxLength = ${maxLength}]`, n);
      if (n > L) L = n;
    }
    const k = expectF32('options.from.k', f.k, { B, Hkv, L, Dh });
    const v = expectF32('options.from.v', f.v, { B, Hkv, L, Dh });
    from = { k, v, lengths };
  }
  product('options', { B, maxLength, Hkv, Dh, two: 2 });
  return { B, maxLength, dtype, from, L };
}

function expectCacheDtype(v: unknown): KVCacheDType {
  if (typeof v !== 'string') throw typeError('options.dtype', "'float32' or 'float16'", v);
  if (!(CACHE_DTYPES as readonly string[]).includes(v)) throw rangeError('options.dtype', "'float32' or 'float16'", v);
  return v as KVCacheDType;
}

/** options.cache of a forward call: a cache of this layer, not in use, with no option it excludes. */
export function expectUsableCache(
  found: { owner: object; busy: boolean } | undefined, cache: unknown, layer: object, o: Record<string, unknown>,
): void {
  if (!found) throw typeError('options.cache', 'a KVCache (from layer.createCache)', cache);
  if (found.owner !== layer) {
    throw new TypeError('Expected a KVCache created by this layer for options.cache but received one created by another layer');
  }
  if (found.busy) throw cacheBusyError('use', ' (options.cache)');
  for (const name of NOT_WITH_CACHE) {
    if (o[name] !== undefined) throw new TypeError(`options.${name} cannot be combined with options.cache`);
  }
  if (o.causal !== undefined && expectBoolean('options.causal', o.causal) !== true) {
    throw rangeError('options.causal', 'true (or omitted) with options.cache (decoding is causal)', o.causal);
  }
}

/** Appending n tokens to sequence b, which holds `length`, must stay within maxLength. */
export function expectRoomInCache(b: number, length: number, n: number, maxLength: number): void {
  if (length + n > maxLength) {
    throw new RangeError(
      `Expected at most maxLength = ${maxLength} tokens in the cache for options.cache but sequence ${b} would hold ` +
      `lengths[${b}] + ${n} = ${length + n}`,
    );
  }
}

/** A cache that a call holds (a forwardAsync until it settles, a forward until it returns) cannot be changed or used. */
export function cacheBusyError(what: string, where = ''): Error {
  return new Error(`Cannot ${what} a KVCache while a forward or forwardAsync on it is in flight${where}`);
}

/** cache.truncate(n): an integer ≥ 0. */
export function expectTruncateLength(n: unknown): number {
  if (typeof n !== 'number') throw new TypeError(`Expected an integer for n but received ${typeof n}`);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`Expected an integer >= 0 for n but received ${n}`);
  return n;
}
