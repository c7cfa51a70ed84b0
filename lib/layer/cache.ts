// KVCache: the keys and values a MultiHeadAttention layer has already projected, kept so that
// generating one more token costs one token's projections plus one pass over the cache. The public
// contract is the KVCache interface of lib/types.ts; this is its one implementation.
//
// Storage is [B, maxLength, Hkv, Dh] for K and for V: the 'bshd' layout with Sk = maxLength. That
// is the layout the projections produce and the attention kernels read in place (their 'bshd'
// strides), so a forward with a cache runs the same kernels with no transpose and no copy of the
// past: appending n new tokens of sequence b is one contiguous copy of n·Hkv·Dh floats, and the
// attention call reads the cache's own buffers with kvLengths = the new lengths. Rows at positions
// >= lengths[b] are unused (stale after truncate; never visible: kvLengths blocks them).
// export() / createCache({ from }) speak the public [B, Hkv, L, Dh] and transpose on the way.
//
// dtype 'float16': the same layout in a Uint16Array of IEEE binary16 bits (half the bytes). The
// append rounds the projected float32 rows to the nearest half (ties to even, |x| >= 65520 -> +-inf;
// lib/kernels/half.ts); the attention kernels widen halves as they load them and compute in fp32, so decode,
// which streams the whole cache once per token, reads half the memory. export() widens back to
// Float32Array (exactly); createCache({ from }) rounds into halves.
import { floatsToHalves, halvesToFloats } from '../kernels/half.js';
import type { KVCache as PublicKVCache, KVCacheDType, KVCacheExport } from '../types.js';
import { allocateF32, allocateU16, partOf } from '../validate-buffer.js';
import { cacheBusyError, expectTruncateLength } from '../validate-cache.js';

/** What the layer that owns a cache reads and writes (not part of the public API). */
export interface CacheState {
  /** The layer that created the cache. */
  readonly owner: object;
  readonly B: number;
  readonly maxLength: number;
  readonly Hkv: number;
  readonly Dh: number;
  readonly dtype: KVCacheDType;
  /** [B, maxLength, Hkv, Dh]: Float32Array, or Uint16Array (binary16 bits) for 'float16'. */
  readonly k: Float32Array | Uint16Array;
  readonly v: Float32Array | Uint16Array;
  /** [B], the valid positions of each sequence. */
  readonly lengths: Int32Array;
  /** True while a forward or forwardAsync on this cache is in flight. */
  busy: boolean;
}

const states = new WeakMap<KVCache, CacheState>();

/** The state of a cache, or undefined for anything that is not a KVCache. */
export function cacheState(cache: unknown): CacheState | undefined {
  return typeof cache === 'object' && cache !== null ? states.get(cache as KVCache) : undefined;
}

function expectIdle(s: CacheState, what: string): void {
  if (s.busy) throw cacheBusyError(what);
}

/** The public KVCache (documented in lib/types.ts); its state lives in `states`, out of reach. */
export class KVCache implements PublicKVCache {
  readonly batch: number;
  readonly maxLength: number;
  readonly dtype: KVCacheDType;
  readonly byteLength: number;

  /** @internal Use `layer.createCache(...)`. */
  constructor(owner: object, B: number, maxLength: number, Hkv: number, Dh: number, dtype: KVCacheDType = 'float32') {
    const n = B * maxLength * Hkv * Dh;
    const half = dtype === 'float16';
    const state: CacheState = {
      owner, B, maxLength, Hkv, Dh, dtype,
      k: half ? allocateU16('the cache keys (B*maxLength*Hkv*Dh)', n) : allocateF32('the cache keys (B*maxLength*Hkv*Dh)', n),
      v: half ? allocateU16('the cache values (B*maxLength*Hkv*Dh)', n) : allocateF32('the cache values (B*maxLength*Hkv*Dh)', n),
      lengths: new Int32Array(B), busy: false,
    };
    states.set(this, state);
    this.batch = B;
    this.maxLength = maxLength;
    this.dtype = dtype;
    this.byteLength = 2 * n * (half ? 2 : 4);
  }

  get lengths(): Int32Array {
    return states.get(this)!.lengths.slice();
  }

  get length(): number {
    let m = 0;
    for (const n of states.get(this)!.lengths) if (n > m) m = n;
    return m;
  }

  reset(): void {
    const s = states.get(this)!;
    expectIdle(s, 'reset');
    s.lengths.fill(0);
  }

  truncate(n: number): void {
    const s = states.get(this)!;
    expectTruncateLength(n);
    expectIdle(s, 'truncate');
    for (let b = 0; b < s.B; b++) if (s.lengths[b]! > n) s.lengths[b] = n;
  }

  export(): KVCacheExport {
    const s = states.get(this)!;
    const L = this.length;
    const k = allocateF32('the exported keys (B*Hkv*L*Dh)', s.B * s.Hkv * L * s.Dh);
    const v = allocateF32('the exported values (B*Hkv*L*Dh)', s.B * s.Hkv * L * s.Dh);
    forEachRow(s, s.lengths, L, (at, row, Dh) => {
      if (s.k instanceof Uint16Array) {
        halvesToFloats(s.k.subarray(at, at + Dh), k, row);
        halvesToFloats((s.v as Uint16Array).subarray(at, at + Dh), v, row);
      } else {
        k.set(s.k.subarray(at, at + Dh), row);
        v.set((s.v as Float32Array).subarray(at, at + Dh), row);
      }
    });
    return { k, v, lengths: s.lengths.slice() };
  }
}

/**
 * Calls fn(at, row, Dh) for every valid (b, h, t) with t < lengths[b]: `at` the row's element offset
 * in the cache's [B, maxLength, Hkv, Dh] storage, `row` its offset in the export's [B, Hkv, L, Dh].
 */
function forEachRow(s: CacheState, lengths: Int32Array, L: number, fn: (at: number, row: number, Dh: number) => void): void {
  const { B, maxLength, Hkv, Dh } = s;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hkv; h++) {
      for (let t = 0; t < lengths[b]!; t++) fn(((b * maxLength + t) * Hkv + h) * Dh, ((b * Hkv + h) * L + t) * Dh, Dh);
    }
  }
}

/** Copies an export ([B, Hkv, L, Dh], validated by the caller) into a fresh cache's storage. */
export function importInto(cache: KVCache, from: KVCacheExport, L: number): void {
  const s = states.get(cache)!;
  forEachRow(s, from.lengths, L, (at, row, Dh) => {
    writeRows(s, 'k', partOf(from.k, row, Dh), at);
    writeRows(s, 'v', partOf(from.v, row, Dh), at);
  });
  s.lengths.set(from.lengths);
}

/** Stores float32 rows into K or V at element offset `dst`, rounding to halves for 'float16'. */
export function writeRows(s: CacheState, which: 'k' | 'v', rows: Float32Array, dst: number): void {
  const store = s[which];
  if (store instanceof Uint16Array) floatsToHalves(rows, store, dst);
  else store.set(rows, dst);
}
