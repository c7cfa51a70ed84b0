// SPDX-License-Identifier: MIT
//
// Half-size weights (weightDtype 'bfloat16' | 'float16'): Linear, linear() and MultiHeadAttention
// on every target (js, native under each kernel set this machine runs) against the float32 layer
// built from the exactly widened weights, which they must equal bitwise (same target, same
// thread count: the kernels widen and then run the float32 FMA chain). Bit patterns that matter
// (subnormal halves, ±0, ±Infinity, NaN payloads) against an independent decoding of the bits.
// Then every TypeError / RangeError, and the binding's own re-checks.
import { describe, expect, test } from 'vitest';
import { nativeBinding } from '../lib/backend/select.js';
import { jsBackend } from '../lib/backend/js.js';
import { nativeBackend } from '../lib/backend/native.js';
import { widenHalves } from '../lib/kernels/half.js';
import { makeRng, nativeKernelSets, randInt, targets, thrownBy } from './helpers.js';

type HalfDtype = 'bfloat16' | 'float16';
const HALF_DTYPES: HalfDtype[] = ['bfloat16', 'float16'];

/** The value of a half's bits, decoded with plain arithmetic (not the library's tables). */
function valueOf(bits: number, dtype: HalfDtype): number {
  const sign = bits & 0x8000 ? -1 : 1;
  if (dtype === 'bfloat16') {
    const e = (bits >> 7) & 0xff, m = bits & 0x7f;
    if (e === 0xff) return m ? NaN : sign * Infinity;
    return e === 0 ? sign * m * 2 ** -133 : sign * (1 + m / 128) * 2 ** (e - 127);
  }
  const e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Random finite halves of moderate size (|value| in about [2^-6, 2)), as weights are. */
function randomHalves(rng: () => number, n: number, dtype: HalfDtype): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const sign = rng() < 0.5 ? 0x8000 : 0;
    if (dtype === 'bfloat16') out[i] = sign | ((121 + randInt(rng, 0, 6)) << 7) | randInt(rng, 0, 0x7f);
    else out[i] = sign | ((9 + randInt(rng, 0, 6)) << 10) | randInt(rng, 0, 0x3ff);
  }
  return out;
}

const randomFloats = (rng: () => number, n: number) => Float32Array.from({ length: n }, () => rng() * 2 - 1);

/** Equal as float32 bit patterns, except that any NaN equals any NaN (payloads are not kept through FMAs). */
function expectSameFloats(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const same = Number.isNaN(want[i]!) ? Number.isNaN(got[i]!) : Object.is(got[i], want[i]);
    if (!same) expect.fail(`${what}: element ${i} is ${got[i]} but the float32 path gives ${want[i]}`);
  }
}

interface LinearCase { M: number; N: number; K: number; outIn: boolean; bias: 'none' | 'float32' | 'half'; seed: number }
const linearCases: LinearCase[] = [
  { M: 1, N: 1, K: 1, outIn: true, bias: 'none', seed: 1 },
  { M: 1, N: 37, K: 70, outIn: true, bias: 'half', seed: 2 },       // decode-shaped: the in-register path
  { M: 3, N: 40, K: 33, outIn: false, bias: 'float32', seed: 3 },
  { M: 7, N: 17, K: 600, outIn: true, bias: 'float32', seed: 4 },   // K past one KC slice (512); 2 row tiles
  { M: 13, N: 48, K: 5, outIn: false, bias: 'half', seed: 5 },
  { M: 70, N: 33, K: 520, outIn: false, bias: 'none', seed: 6 },    // widened-slice path, odd panel count
  { M: 200, N: 20, K: 64, outIn: true, bias: 'half', seed: 7 },     // more than one M block (MC = 192)
];

describe.each(targets)('half weights: Linear / linear() [$name]', (t) => {
  describe.each(HALF_DTYPES)('%s', (dtype) => {
    test.each(linearCases)('M=$M N=$N K=$K outIn=$outIn bias=$bias: bitwise the float32 layer on the widened weight', (c) => {
      const rng = makeRng(0xb16 + c.seed);
      const weight = randomHalves(rng, c.N * c.K, dtype);
      const x = randomFloats(rng, c.M * c.K);
      const halfBias = c.bias === 'half' ? randomHalves(rng, c.N, dtype) : undefined;
      const bias = c.bias === 'float32' ? randomFloats(rng, c.N) : halfBias;
      const floatBias = bias === undefined ? undefined : bias instanceof Float32Array ? bias : widenHalves(bias, dtype);
      const weightLayout = c.outIn ? 'out-in' : 'in-out';
      const config = { inFeatures: c.K, outFeatures: c.N, weightLayout };
      const want = t.run(() =>
        new t.face.Linear({ ...config, weight: widenHalves(weight, dtype), bias: floatBias }).forward(x)) as Float32Array;
      const layer = new t.face.Linear({ ...config, weight, bias, weightDtype: dtype });
      expect(layer.weightDtype).toBe(dtype);
      expectSameFloats(t.run(() => layer.forward(x)), want, 'Linear');
      expectSameFloats(t.run(() => t.face.linear(x, weight, bias ?? null, { ...config, weightDtype: dtype })), want, 'linear()');
    });

    // The async work runs on the pool with the kernel set in effect when it executes, which for a
    // forced set races with t.run restoring 'auto': only js and the default (best) set, where that
    // race cannot change the set, compare async results bitwise.
    test.runIf(t.name === 'js' || t.name === `native-${nativeKernelSets.at(-1)}` || t.name === 'qkv')('linearAsync and forwardAsync give the same bits', async () => {
      const rng = makeRng(0xa5);
      const [M, N, K] = [5, 24, 40];
      const weight = randomHalves(rng, N * K, dtype);
      const x = randomFloats(rng, M * K);
      const want = await t.run(() => t.face.linearAsync(x, widenHalves(weight, dtype), { inFeatures: K })) as Float32Array;
      expectSameFloats(await t.run(() => t.face.linearAsync(x, weight, { inFeatures: K, weightDtype: dtype })), want, 'linearAsync');
      const layer = new t.face.Linear({ weight, inFeatures: K, weightDtype: dtype });
      expectSameFloats(await t.run(() => layer.forwardAsync(x)), want, 'forwardAsync');
    });

    test('bit patterns: subnormals, ±0, ±Infinity and NaN payloads widen exactly', () => {
      // One output column per pattern; x is one-hot, so y[j] = 1 · w[j, k0] + 0 · (the rest).
      const patterns = dtype === 'bfloat16'
        ? [0x0000, 0x8000, 0x0001, 0x8001, 0x007f, 0x0080, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x7f81, 0x7fc0, 0xffff, 0x3f80, 0x4049]
        : [0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xffff, 0x3c00, 0x4248];
      const N = patterns.length, K = 3;
      const weight = new Uint16Array(N * K); // [N, K], column k0 = 1 holds the patterns, the rest +0
      patterns.forEach((p, j) => (weight[j * K + 1] = p));
      // Rows: x = e1 (the pattern itself), and x = 2^20 e1 (scales subnormals into normal floats).
      const x = new Float32Array([0, 1, 0, 0, 2 ** 20, 0]);
      const y = t.run(() => new t.face.Linear({ weight, inFeatures: K, weightDtype: dtype }).forward(x)) as Float32Array;
      patterns.forEach((p, j) => {
        const v = valueOf(p, dtype);
        for (const [row, scale] of [[0, 1], [1, 2 ** 20]] as const) {
          const got = y[row * N + j]!;
          if (Number.isNaN(v)) expect(Number.isNaN(got), `pattern 0x${p.toString(16)} row ${row}`).toBe(true);
          // 0·w + 1·v + 0·w: a -0 weight sums to +0 (the accumulator starts at +0), as in float32.
          else expect(got, `pattern 0x${p.toString(16)} row ${row}`).toBe(v === 0 ? 0 : Math.fround(v * scale));
        }
      });
      // The same against the float32 layer on the widened weight, -0 and NaN included.
      const want = t.run(() => new t.face.Linear({ weight: widenHalves(weight, dtype), inFeatures: K }).forward(x)) as Float32Array;
      expectSameFloats(y, want, 'special patterns');
    });
  });
});

interface MhaCase { E: number; H: number; Hkv: number; Dh: number; form: 'separate' | 'pytorch'; outIn: boolean; bias: 'none' | 'float32' | 'half' }
const mhaCases: MhaCase[] = [
  { E: 32, H: 4, Hkv: 2, Dh: 8, form: 'separate', outIn: true, bias: 'half' },
  { E: 24, H: 4, Hkv: 1, Dh: 10, form: 'separate', outIn: false, bias: 'float32' },
  { E: 32, H: 4, Hkv: 4, Dh: 8, form: 'pytorch', outIn: true, bias: 'float32' },
  { E: 48, H: 3, Hkv: 3, Dh: 16, form: 'pytorch', outIn: false, bias: 'half' },
  { E: 16, H: 2, Hkv: 2, Dh: 8, form: 'separate', outIn: true, bias: 'none' },
];

describe.each(targets)('half weights: MultiHeadAttention [$name]', (t) => {
  describe.each(HALF_DTYPES)('%s', (dtype) => {
    test.each(mhaCases)('E=$E H=$H Hkv=$Hkv Dh=$Dh $form outIn=$outIn bias=$bias: forward and cached decode equal the float32 layer', (c) => {
      const rng = makeRng(0x3a + c.E + c.Dh);
      const { E, H, Hkv, Dh } = c;
      const half = (n: number) => randomHalves(rng, n, dtype);
      const biasOf = (n: number) => (c.bias === 'none' ? undefined : c.bias === 'half' ? half(n) : randomFloats(rng, n));
      const weights: Record<string, Uint16Array | Float32Array | undefined> = c.form === 'separate'
        ? { wq: half(H * Dh * E), wk: half(Hkv * Dh * E), wv: half(Hkv * Dh * E), wo: half(E * H * Dh), bq: biasOf(H * Dh), bk: biasOf(Hkv * Dh), bv: biasOf(Hkv * Dh), bo: biasOf(E) }
        : { inProjWeight: half(3 * E * E), inProjBias: biasOf(3 * E), outProjWeight: half(E * E), outProjBias: biasOf(E) };
      for (const key of Object.keys(weights)) if (weights[key] === undefined) delete weights[key];
      const widened = Object.fromEntries(Object.entries(weights).map(([key, w]) => [key, w instanceof Uint16Array ? widenHalves(w, dtype) : w]));
      const config = { embedDim: E, numHeads: H, numKvHeads: Hkv, headDim: Dh, weightLayout: c.outIn ? 'out-in' : 'in-out' };
      const ref = new t.face.MultiHeadAttention({ ...config, weights: widened });
      const layer = new t.face.MultiHeadAttention({ ...config, weights, weightDtype: dtype });
      expect(layer.weightDtype).toBe(dtype);
      const [B, S] = [2, 5];
      const x = randomFloats(rng, B * S * E);
      expectSameFloats(t.run(() => layer.forward(x, { batch: B, causal: true })), t.run(() => ref.forward(x, { batch: B, causal: true })), 'forward');
      // Prefill then one decode step through a cache.
      const caches = [ref.createCache({ batch: 1, maxLength: 8 }), layer.createCache({ batch: 1, maxLength: 8 })];
      const prompt = x.subarray(0, S * E), token = x.subarray(S * E, S * E + E);
      t.run(() => ref.forward(prompt, { cache: caches[0] }));
      t.run(() => layer.forward(prompt, { cache: caches[1] }));
      expectSameFloats(t.run(() => layer.forward(token, { cache: caches[1] })), t.run(() => ref.forward(token, { cache: caches[0] })), 'decode step');
    });
  });
});

describe('half weights: packed memory', () => {
  const backends = [jsBackend, ...(nativeBinding ? [nativeBackend(nativeBinding)] : [])];
  test.each(backends.map((b) => [b.name, b] as const))('%s: a half weight packs into half the bytes of a float32 one', (_name, backend) => {
    const [N, K] = [256, 384];
    const f32 = backend.packWeight(new Float32Array(N * K), true, N, K, 'float32');
    for (const dtype of HALF_DTYPES) {
      const half = backend.packWeight(new Uint16Array(N * K), true, N, K, dtype);
      // Native adds the same small header and alignment slack to both.
      const overhead = backend.name === 'native' ? 24 * 4 : 0;
      expect(half.data.byteLength - overhead).toBe((f32.data.byteLength - overhead) / 2);
      expect(half.dtype).toBe(dtype);
    }
  });
});

describe('half weights: errors (same on every target)', () => {
  const K = 4, N = 3;
  const w16 = new Uint16Array(N * K), w32 = new Float32Array(N * K);
  const cases: Array<[string, (face: any) => unknown, TypeErrorConstructor | RangeErrorConstructor, string]> = [
    ['Uint16Array weight without weightDtype', (f) => new f.Linear({ weight: w16, inFeatures: K }), TypeError,
      "Expected Float32Array (a Uint16Array of bits needs weightDtype 'bfloat16' or 'float16') for config.weight but received Uint16Array(12)"],
    ['Float32Array weight with a half weightDtype', (f) => new f.Linear({ weight: w32, inFeatures: K, weightDtype: 'bfloat16' }), TypeError,
      "Expected Uint16Array of bfloat16 bits (weightDtype is 'bfloat16') for config.weight but received Float32Array(12)"],
    ['a half weight of the wrong length', (f) => new f.Linear({ weight: new Uint16Array(11), inFeatures: K, outFeatures: N, weightDtype: 'float16' }), RangeError,
      'Expected config.weight.length to be outFeatures*inFeatures = 3*4 = 12 but received 11'],
    ['a half weight that is no whole number of rows', (f) => new f.Linear({ weight: new Uint16Array(11), inFeatures: K, weightDtype: 'float16' }), RangeError,
      'Expected config.weight.length to be a positive multiple of inFeatures = 4 but received 11'],
    ['an unknown weightDtype', (f) => new f.Linear({ weight: w32, inFeatures: K, weightDtype: 'bf16' }), RangeError,
      "Expected 'float32' | 'bfloat16' | 'float16' for config.weightDtype but received 'bf16'"],
    ['a weightDtype that is not a string', (f) => f.linear(new Float32Array(K), w32, { inFeatures: K, weightDtype: 16 }), TypeError,
      "Expected 'float32' | 'bfloat16' | 'float16' for options.weightDtype but received 16"],
    ['a Uint16Array bias on a float32 weight', (f) => f.linear(new Float32Array(K), w32, new Uint16Array(N), { inFeatures: K }), TypeError,
      "Expected Float32Array (a Uint16Array of bits needs weightDtype 'bfloat16' or 'float16') for bias but received Uint16Array(3)"],
    ['a half bias of the wrong length', (f) => new f.Linear({ weight: w16, bias: new Uint16Array(2), inFeatures: K, weightDtype: 'bfloat16' }), RangeError,
      'Expected config.bias.length to be outFeatures = 3 but received 2'],
    ['an Int16Array bias with a half weightDtype', (f) => new f.Linear({ weight: w16, bias: new Int16Array(3), inFeatures: K, weightDtype: 'bfloat16' }), TypeError,
      'Expected Float32Array or Uint16Array of bfloat16 bits for config.bias but received Int16Array(3)'],
    ['checkFinite finds a half NaN', (f) => new f.Linear({ weight: Uint16Array.of(0x3f80, 0, 0x7fc1, 0), inFeatures: 2, weightDtype: 'bfloat16', checkFinite: true }), RangeError,
      'Expected finite values in config.weight but config.weight[2] is NaN'],
    ['checkFinite finds a float16 -Infinity', (f) => f.linear(new Float32Array(2), Uint16Array.of(0, 0xfc00), { inFeatures: 2, weightDtype: 'float16', checkFinite: true }), RangeError,
      'Expected finite values in weight but weight[1] is -Infinity'],
    ['an MHA weight in float32 with weightDtype bfloat16', (f) => new f.MultiHeadAttention({
      embedDim: 8, numHeads: 2, weightDtype: 'bfloat16',
      weights: { wq: new Uint16Array(64), wk: new Float32Array(64), wv: new Uint16Array(64), wo: new Uint16Array(64) },
    }), TypeError, "Expected Uint16Array of bfloat16 bits (weightDtype is 'bfloat16') for config.weights.wk but received Float32Array(64)"],
    ['an MHA half weight of the wrong length', (f) => new f.MultiHeadAttention({
      embedDim: 8, numHeads: 2, numKvHeads: 1, weightDtype: 'float16',
      weights: { wq: new Uint16Array(64), wk: new Uint16Array(64), wv: new Uint16Array(32), wo: new Uint16Array(64) },
    }), RangeError, 'Expected config.weights.wk.length to be Hkv*Dh*E = 1*4*8 = 32 but received 64'],
    ['an MHA Uint16Array in_proj weight without weightDtype', (f) => new f.MultiHeadAttention({
      embedDim: 8, numHeads: 2, weights: { inProjWeight: new Uint16Array(192), outProjWeight: new Float32Array(64) },
    }), TypeError, "Expected Float32Array (a Uint16Array of bits needs weightDtype 'bfloat16' or 'float16') for config.weights.inProjWeight but received Uint16Array(192)"],
    ['an MHA unknown weightDtype', (f) => new f.MultiHeadAttention({
      embedDim: 8, numHeads: 2, weightDtype: 'int8', weights: { inProjWeight: new Float32Array(192), outProjWeight: new Float32Array(64) },
    }), RangeError, "Expected 'float32' | 'bfloat16' | 'float16' for config.weightDtype but received 'int8'"],
  ];
  test.each(targets.flatMap((t) => cases.map((c) => [t.name, ...c] as const)))('%s: %s', (_target, _what, call, kind, message) => {
    const t = targets.find((x) => x.name === _target)!;
    const err = thrownBy(() => t.run(() => call(t.face)));
    expect(err).toBeInstanceOf(kind);
    expect((err as Error).message).toBe(message);
  });
});

describe.skipIf(!nativeBinding)('half weights: the binding re-checks what it is given', () => {
  const b = nativeBinding!;
  const [N, K] = [5, 6];
  const packHalf = (code: number) => b.gemmPack(new Uint16Array(N * K), true, N, K, new Float32Array(b.gemmPackedLength(N, K, code)), code);

  test('gemmPack: w must be a Uint16Array of N*K for a half dtype, and the dtype a known code', () => {
    const packed = new Float32Array(b.gemmPackedLength(N, K, 1));
    expect(thrownBy(() => b.gemmPack(new Float32Array(N * K), true, N, K, packed, 1))).toBeInstanceOf(TypeError);
    const short = thrownBy(() => b.gemmPack(new Uint16Array(N * K - 1), true, N, K, packed, 1));
    expect(short).toBeInstanceOf(RangeError);
    expect((short as Error).message).toBe('Expected w.length to be N*K = 5*6 = 30 but received 29');
    expect(thrownBy(() => b.gemmPack(new Uint16Array(N * K), true, N, K, packed, 3))).toBeInstanceOf(RangeError);
    const wrongPacked = thrownBy(() => b.gemmPack(new Uint16Array(N * K), true, N, K, new Float32Array(b.gemmPackedLength(N, K)), 2));
    expect((wrongPacked as Error).message).toMatch(/^Expected packed\.length to be gemmPackedLength\(N, K, dtype\) = gemmPackedLength\(5, 6, 2\) = \d+ but received \d+$/);
  });

  test('gemmPack: w and packed must not overlap', () => {
    const floats = b.gemmPackedLength(N, K, 1);
    const buffer = new ArrayBuffer(floats * 4);
    const err = thrownBy(() => b.gemmPack(new Uint16Array(buffer, 0, N * K), true, N, K, new Float32Array(buffer), 1));
    expect(err).toBeInstanceOf(RangeError);
  });

  test('gemm: a half packed weight must have its own length; a header whose dtype disagrees with the length is refused', () => {
    const x = new Float32Array(2 * K), y = new Float32Array(2 * N);
    const packed = packHalf(1);
    expect(() => b.gemm(x, 2, K, packed, N, null, y)).not.toThrow();
    // The half header in a buffer of the float32 length: refused, nothing written.
    const padded = new Float32Array(b.gemmPackedLength(N, K));
    padded.set(packed);
    y.fill(7);
    const err = thrownBy(() => b.gemm(x, 2, K, padded, N, null, y));
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toContain('a header for another dtype than its length');
    expect(y.every((v) => v === 7)).toBe(true);
    // One float short of the half length: a length error (against the float32 formula).
    expect(thrownBy(() => b.gemm(x, 2, K, packed.subarray(1), N, null, y))).toBeInstanceOf(RangeError);
    // A float32 header cut to the half length.
    const f32 = b.gemmPack(new Float32Array(N * K), true, N, K, new Float32Array(b.gemmPackedLength(N, K)));
    expect((thrownBy(() => b.gemm(x, 2, K, f32.subarray(0, packed.length), N, null, y)) as Error).message)
      .toContain('a header for another dtype than its length');
    // The same checks on the async path, before anything is queued.
    expect(thrownBy(() => b.runAsync([['gemm', x, 2, K, padded, N, null, y]], () => {}))).toBeInstanceOf(RangeError);
  });
});
