// Callers that lie: getters and Proxies that answer differently on a second read, typed-array
// subclasses that misreport their length, signals that are not quite AbortSignals or whose methods
// throw, option values outside float32's range, allocations beyond memory. Every case runs on both
// faces; each must end in a clean error or in the right result, never in a corrupted cache, an
// unsettled Promise or a crash.
import { describe, expect, test } from 'vitest';
import * as native from '../lib/index.js';
import * as js from '../lib/js.js';
import type { SdpaOptions } from '../lib/index.js';

const faces = [['default', native], ['js', js]] as const;

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** An Int32Array-like Proxy whose element 0 reads `first` once, then `later`. */
function flipping(first: number, later: number, length: number): Int32Array {
  const real = new Int32Array(length).fill(first);
  let reads = 0;
  return new Proxy(real, {
    get(target, key) {
      if (key === '0') return reads++ === 0 ? first : later;
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe.each(faces)('hostile callers (%s face)', (_name, api) => {
  const E = 8;
  const H = 2;
  const layer = () => new api.MultiHeadAttention({
    embedDim: E, numHeads: H, weights: { wq: rand(E * E, 1), wk: rand(E * E, 2), wv: rand(E * E, 3), wo: rand(E * E, 4) },
  });

  test('seqLens is read once: a getter that changes its answer cannot move the cache', () => {
    const l = layer();
    const cache = l.createCache({ batch: 2, maxLength: 16 });
    l.forward(rand(2 * 6 * E, 5), { batch: 2, cache });
    let reads = 0;
    const lens = new Int32Array([1, 1]);
    const options = { batch: 2, cache, get seqLens() { return reads++ === 0 ? lens : new Int32Array([-1, 3]); } };
    try {
      l.forward(rand(2 * 1 * E, 6), options as never);
    } catch {
      // a clean error is also acceptable; what matters is the state below
    }
    expect(reads).toBe(1);
    expect(Array.from(cache.lengths)).toEqual([7, 7]);
  });

  test('a Proxy seqLens that reads 1 then -1 is checked and used as one copy', () => {
    const l = layer();
    const cache = l.createCache({ batch: 2, maxLength: 16 });
    l.forward(rand(2 * 6 * E, 7), { batch: 2, cache });
    try {
      l.forward(rand(2 * 1 * E, 8), { batch: 2, cache, seqLens: flipping(1, -1, 2) });
    } catch (e) {
      expect(e).toBeInstanceOf(TypeError); // a Proxy is not a typed array
    }
    expect(Array.from(cache.lengths)).toEqual([6, 6]);
  });

  test('an option getter that starts a forwardAsync on the same cache makes the outer call a clean error', async () => {
    const l = layer();
    const cache = l.createCache({ maxLength: 16 });
    l.forward(rand(4 * E, 9), { cache });
    let inner: Promise<Float32Array> | undefined;
    const x = rand(E, 10);
    const options = {
      cache,
      get seqLen() {
        inner ??= l.forwardAsync(x, { cache });
        return 1;
      },
    };
    // The getter runs while the options are read, before the outer call takes the lock; the inner
    // call holds it by then, so the outer one is refused instead of appending at the same slot.
    expect(() => l.forward(x, options)).toThrow(/in flight/);
    await inner;
    expect(cache.length).toBe(5);
  });

  test('a typed-array subclass that lies about its length is measured by its real length', () => {
    class Liar extends Float32Array {
      override get length(): number {
        return 32;
      }
      override get byteLength(): number {
        return 128;
      }
    }
    const q = rand(4 * 8, 12);
    const out = new Liar(8); // really 8 floats, claims the 32 the call needs
    expect(() => api.scaledDotProductAttention(q, q, q, { heads: 1, seqQ: 4, headDim: 8, out }))
      .toThrow(/Expected options\.out\.length to be B\*H\*Sq\*Dv = 1\*1\*4\*8 = 32 but received 8/);
  });

  test('mask.dims is read once: a Proxy answering [4, 4] then [1, 1] cannot make the checks disagree', () => {
    const q = rand(4 * 8, 13);
    let reads = 0;
    const dims = new Proxy([4, 4], {
      get(target, key) {
        if (key === '0' || key === '1') return reads++ < 2 ? 4 : 1;
        return Reflect.get(target, key);
      },
    });
    const mask = { data: new Float32Array(16), dims };
    const out = api.scaledDotProductAttention(q, q, q, { heads: 1, seqQ: 4, headDim: 8, mask });
    const plain = api.scaledDotProductAttention(q, q, q, { heads: 1, seqQ: 4, headDim: 8, mask: { data: new Float32Array(16), dims: [4, 4] } });
    expect(Array.from(out)).toEqual(Array.from(plain));
  });

  test('an object that only inherits from AbortSignal.prototype is a TypeError, before any Promise', () => {
    const q = rand(4 * 8, 14);
    const signal = Object.create(AbortSignal.prototype) as AbortSignal;
    expect(() => api.scaledDotProductAttentionAsync(q, q, q, { heads: 1, seqQ: 4, headDim: 8, signal }))
      .toThrow(/Expected an AbortSignal \(this object only inherits from AbortSignal\.prototype\) for options\.signal/);
  });

  test('a signal whose own methods and getters throw still lets every call settle', async () => {
    const q = rand(4 * 8, 15);
    const controller = new AbortController();
    const signal = controller.signal;
    for (const key of ['addEventListener', 'removeEventListener']) {
      Object.defineProperty(signal, key, { value: () => { throw new Error(`${key} called`); } });
    }
    Object.defineProperty(signal, 'aborted', { get: () => { throw new Error('aborted read'); } });
    const l = layer();
    const calls = Array.from({ length: 12 }, () => l.forwardAsync(rand(2 * E, 16), { signal }));
    const done = await Promise.allSettled([...calls, api.scaledDotProductAttentionAsync(q, q, q, { heads: 1, seqQ: 4, headDim: 8, signal })]);
    expect(done.every((r) => r.status === 'fulfilled')).toBe(true);
    // The layer's admission places all came back: a further call runs.
    await expect(l.forwardAsync(rand(2 * E, 17))).resolves.toBeInstanceOf(Float32Array);
  });

  test('many concurrent calls on one signal add one listener (no MaxListenersExceededWarning)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const controller = new AbortController();
      const l = layer();
      const calls = Array.from({ length: 40 }, (_, i) => l.forwardAsync(rand(2 * E, 20 + i), { signal: controller.signal }));
      await Promise.all(calls);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  test.each([
    ['softcap', 1e39], ['softcap', 1e-39], ['softcap', 1e-300], ['scale', 3.5e38], ['scale', -1e39],
  ] as const)('%s = %s, outside float32, is a RangeError', (key, value) => {
    const q = rand(4 * 8, 30);
    expect(() => api.scaledDotProductAttention(q, q, q, { heads: 1, seqQ: 4, headDim: 8, [key]: value } as SdpaOptions))
      .toThrow(new RegExp(`for options\\.${key} but received`));
  });

  test('softcap and scale at the edges of float32 give finite results on every backend', () => {
    const q = rand(4 * 8, 31);
    for (const o of [{ softcap: 1.1754943508222875e-38 }, { softcap: 3.4028234663852886e38 }, { scale: 3.4028234663852886e38, softcap: 1 }]) {
      const out = api.scaledDotProductAttention(q, q, q, { heads: 1, seqQ: 4, headDim: 8, ...o });
      expect(out.every(Number.isFinite), JSON.stringify(o)).toBe(true);
    }
  });

  test('a cache beyond memory is a RangeError naming what could not be allocated', () => {
    const l = new api.MultiHeadAttention({ embedDim: 1024, numHeads: 8, weights: {
      wq: new Float32Array(1024 * 1024), wk: new Float32Array(1024 * 1024), wv: new Float32Array(1024 * 1024), wo: new Float32Array(1024 * 1024),
    } });
    expect(() => l.createCache({ batch: 64, maxLength: 2 ** 20 })).toThrow(/^Could not allocate the cache keys \(B\*maxLength\*Hkv\*Dh\)/);
  });

  test('a resizable buffer given to an async call is refused up front', () => {
    const q = rand(4 * 8, 32);
    const Ctor = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer;
    const out = new Float32Array(new Ctor(4 * 32, { maxByteLength: 4 * 64 }));
    expect(() => api.scaledDotProductAttentionAsync(q, q, q, { heads: 1, seqQ: 4, headDim: 8, out }))
      .toThrow(/Expected a typed array over a fixed-length buffer .* for options\.out/);
    // The sync call is fine: nothing holds the buffer after it returns.
    expect(api.scaledDotProductAttention(q, q, q, { heads: 1, seqQ: 4, headDim: 8, out })).toBe(out);
  });
});

describe('both backends agree at float32 edges', () => {
  test('softcap = FLT_MIN', () => {
    const q = rand(4 * 8, 40);
    const o = { heads: 1, seqQ: 4, headDim: 8, softcap: 1.1754943508222875e-38 };
    const a = native.scaledDotProductAttention(q, q, q, o);
    const b = js.scaledDotProductAttention(q, q, q, o);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5);
  });
});
