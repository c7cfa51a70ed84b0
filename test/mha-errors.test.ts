// SPDX-License-Identifier: MIT
//
// Every TypeError / RangeError of new MultiHeadAttention(config) and layer.forward(x, options), on
// every runner: the class and a message naming the argument (with the expected formula for a wrong
// length). forward writes nothing to `out` when it throws.
import { describe, expect, test } from 'vitest';
import { expectError, runners } from './helpers.js';

const E = 8, H = 4, Hkv = 2, Dh = 2;
const f = (n: number, v = 0.1) => new Float32Array(n).fill(v);
const good = () => ({
  wq: f(H * Dh * E), wk: f(Hkv * Dh * E), wv: f(Hkv * Dh * E), wo: f(E * H * Dh),
  bq: f(H * Dh), bk: f(Hkv * Dh), bv: f(Hkv * Dh), bo: f(E),
});
const torch = () => ({ inProjWeight: f(3 * E * E), inProjBias: f(3 * E), outProjWeight: f(E * E), outProjBias: f(E) });
const base = (extra: Record<string, unknown> = {}) => ({ embedDim: E, numHeads: H, numKvHeads: Hkv, weights: good(), ...extra });
type Err = typeof TypeError | typeof RangeError;

const ctorCases: Array<[string, unknown, Err, RegExp]> = [
  ['config missing', undefined, TypeError, /an object for config but received undefined/],
  ['embedDim missing', { numHeads: H, weights: good() }, TypeError, /config\.embedDim but received undefined/],
  ['numHeads zero', base({ numHeads: 0 }), RangeError, /config\.numHeads but received 0/],
  ['numHeads % numKvHeads', base({ numKvHeads: 3 }), RangeError, /a divisor of numHeads = 4 for config\.numKvHeads but received 3/],
  ['E % H without headDim', { embedDim: 10, numHeads: 4, weights: good() }, RangeError, /a divisor of embedDim = 10 \(or give config\.headDim\) for config\.numHeads/],
  ['unknown config key', base({ numKVHeads: 2 }), TypeError, /Unknown option 'numKVHeads' in config \(did you mean 'numKvHeads'\?\)/],
  ['weightLayout unknown', base({ weightLayout: 'io' }), RangeError, /'out-in' \| 'in-out' for config\.weightLayout but received 'io'/],
  ['bias not a boolean', base({ bias: 1 }), TypeError, /a boolean for config\.bias/],
  ['weights missing', { embedDim: E, numHeads: H }, TypeError, /an object for config\.weights but received undefined/],
  ['unknown weights key', base({ weights: { ...good(), wk2: f(1) } }), TypeError, /Unknown option 'wk2' in config\.weights/],
  ['wq wrong length (formula)', base({ weights: { ...good(), wq: f(E * E + 1) } }), RangeError, /config\.weights\.wq\.length to be H\*Dh\*E = 4\*2\*8 = 64 but received 65/],
  ['wk sized for H instead of Hkv', base({ weights: { ...good(), wk: f(H * Dh * E) } }), RangeError, /config\.weights\.wk\.length to be Hkv\*Dh\*E = 2\*2\*8 = 32 but received 64/],
  ['wo in-out formula', base({ weightLayout: 'in-out', weights: { ...good(), wo: f(3) } }), RangeError, /config\.weights\.wo\.length to be H\*Dh\*E = 4\*2\*8 = 64/],
  ['wv a Float64Array', base({ weights: { ...good(), wv: new Float64Array(32) } }), TypeError, /Float32Array for config\.weights\.wv but received Float64Array\(32\)/],
  ['wq missing', base({ weights: { ...good(), wq: undefined } }), TypeError, /Float32Array for config\.weights\.wq but received undefined/],
  ['bk wrong length', base({ weights: { ...good(), bk: f(H * Dh) } }), RangeError, /config\.weights\.bk\.length to be Hkv\*Dh = 2\*2 = 4 but received 8/],
  ['bo wrong type', base({ weights: { ...good(), bo: [0] } }), TypeError, /config\.weights\.bo/],
  ['bias: false with bq given', base({ bias: false }), TypeError, /no bias \(config\.bias is false\) for config\.weights\.bq but received Float32Array\(8\)/],
  ['bias: false with inProjBias', { embedDim: E, numHeads: H, bias: false, weights: torch() }, TypeError, /config\.weights\.inProjBias/],
  ['PyTorch form with GQA', { embedDim: E, numHeads: H, numKvHeads: 2, weights: torch() }, RangeError, /numHeads = 4 with inProjWeight .* for config\.numKvHeads/],
  ['PyTorch form with H·Dh ≠ E', { embedDim: E, numHeads: H, headDim: 3, weights: torch() }, RangeError, /PyTorch form needs H\*Dh = E\) for config\.headDim but received 3/],
  ['inProjWeight wrong length', { embedDim: E, numHeads: H, weights: { ...torch(), inProjWeight: f(E * E) } }, RangeError, /config\.weights\.inProjWeight\.length to be 3E\*E = 24\*8 = 192 but received 64/],
  ['inProjWeight in-out names [E, 3E]', { embedDim: E, numHeads: H, weightLayout: 'in-out', weights: { ...torch(), inProjWeight: f(1) } }, RangeError, /E\*3E = 8\*24 = 192/],
  ['forms mixed', { embedDim: E, numHeads: H, weights: { ...torch(), wo: f(E * E) } }, TypeError, /for config\.weights but received both \('wo' and 'inProjWeight'\): the two forms are exclusive/],
];

describe.each(runners)('new MultiHeadAttention errors [$name]', (r) => {
  test.each(ctorCases)('%s', (_, config, cls, msg) => {
    expectError(() => r.newMha(config), cls, msg);
  });

  test('valid forms construct: defaults, bias false without biases, missing biases, PyTorch without biases', () => {
    expect(r.newMha(base()).headDim).toBe(2);
    const { bq: _bq, bk: _bk, bv: _bv, bo: _bo, ...noBias } = good();
    expect(r.newMha(base({ bias: false, weights: noBias })).numKvHeads).toBe(2);
    expect(r.newMha(base({ weights: { ...noBias, bv: f(Hkv * Dh) } })).numHeads).toBe(4);
    const { inProjBias: _ib, outProjBias: _ob, ...torchNoBias } = torch();
    expect(r.newMha({ embedDim: E, numHeads: H, weights: torchNoBias }).numKvHeads).toBe(H);
  });
});

describe.each(runners)('forward errors [$name] (nothing written)', (r) => {
  const layer = r.newMha(base());
  const B = 2, S = 3;
  const x = f(B * S * E, 0.5);
  const SENTINEL = 1234;
  const newOut = () => new Float32Array(B * S * E).fill(SENTINEL);

  const cases: Array<[string, unknown, Record<string, unknown>, Err, RegExp]> = [
    ['x a Float64Array', new Float64Array(48), { batch: B }, TypeError, /Float32Array for x but received Float64Array\(48\)/],
    ['x not a multiple of B·E', x.subarray(1), { batch: B }, RangeError, /x\.length to be a positive multiple of batch\*embedDim = 2\*8 = 16 but received 47/],
    ['x vs seqLen', x, { batch: B, seqLen: 4 }, RangeError, /x\.length to be B\*S\*E = 2\*4\*8 = 64 but received 48/],
    ['options not an object', x, 'causal' as never, TypeError, /an object for options/],
    ['unknown option (typo)', x, { batch: B, casual: true }, TypeError, /Unknown option 'casual' in options \(did you mean 'causal'\?\)/],
    ['cache not a KVCache', x, { batch: B, cache: {} }, TypeError, /a KVCache \(from layer\.createCache\) for options\.cache/],
    ['batch zero', x, { batch: 0 }, RangeError, /options\.batch but received 0/],
    ['causal a string', x, { batch: B, causal: 'top-left' }, TypeError, /a boolean for options\.causal/],
    ['needWeights a number', x, { batch: B, needWeights: 1 }, TypeError, /a boolean for options\.needWeights/],
    ['averageWeights a string', x, { batch: B, needWeights: true, averageWeights: 'yes' }, TypeError, /options\.averageWeights/],
    ['mask does not broadcast', x, { batch: B, mask: { data: f(S * 2), dims: [S, 2] } }, RangeError, /1 or Sk = 3 .* for options\.mask\.dims\[1\] but received 2/],
    ['mask of another array type', x, { batch: B, mask: { data: new Int8Array(9), dims: [S, S] } }, TypeError, /options\.mask\.data/],
    ['mask data length', x, { batch: B, mask: { data: f(8), dims: [S, S] } }, RangeError, /options\.mask\.data\.length/],
    ['kvLengths out of range', x, { batch: B, kvLengths: Int32Array.of(3, 4) }, RangeError, /\[0, seqK = 3\] for options\.kvLengths\[1\] but received 4/],
    ['kvLengths wrong type', x, { batch: B, kvLengths: [3, 3] }, TypeError, /Int32Array for options\.kvLengths/],
    ['seqLens out of range', x, { batch: B, seqLens: Int32Array.of(-1, 2) }, RangeError, /\[0, seqLen = 3\] for options\.seqLens\[0\] but received -1/],
    ['seqLens wrong length', x, { batch: B, seqLens: Int32Array.of(1) }, RangeError, /options\.seqLens\.length to be B = 2 but received 1/],
    ['seqLens wrong type', x, { batch: B, seqLens: new Uint32Array(2) }, TypeError, /Int32Array for options\.seqLens/],
    ['context not a multiple of B·E', x, { batch: B, context: f(17) }, RangeError, /options\.context\.length to be a positive multiple of batch\*embedDim = 2\*8 = 16/],
    ['context a plain array', x, { batch: B, context: [1] }, TypeError, /Float32Array for options\.context/],
    ['out wrong length', x, { batch: B, out: f(47) }, RangeError, /options\.out\.length to be B\*S\*E = 2\*3\*8 = 48 but received 47/],
    ['out a Float64Array', x, { batch: B, out: new Float64Array(48) }, TypeError, /Float32Array for options\.out/],
  ];

  test.each(cases)('%s', (_, xArg, options, cls, msg) => {
    const out = newOut();
    const opts = typeof options !== 'object' || 'out' in options ? options : { ...options, out };
    expectError(() => layer.forward(xArg, opts), cls, msg);
    expect(out.every((v) => v === SENTINEL)).toBe(true);
  });

  test('out overlapping x, context, mask, kvLengths or seqLens is a RangeError and nothing is written', () => {
    const buf = new Float32Array(200).fill(SENTINEL);
    const xs = buf.subarray(0, B * S * E);
    xs.fill(0.5);
    const before = buf.slice();
    expect(() => layer.forward(xs, { batch: B, out: buf.subarray(40, 88) })).toThrow(/options\.out not to overlap x/);
    const ctx = buf.subarray(100, 148);
    expect(() => layer.forward(x, { batch: B, context: ctx, out: buf.subarray(120, 168) })).toThrow(/overlap options\.context/);
    const mask = { data: buf.subarray(150, 159), dims: [S, S] };
    expect(() => layer.forward(x, { batch: B, mask, out: buf.subarray(150 - 47, 151) })).toThrow(/overlap options\.mask\.data/);
    expect(buf).toEqual(before);
    const ints = new Int32Array(60);
    const f32 = new Float32Array(ints.buffer, 0, 48);
    expect(() => layer.forward(x, { batch: B, kvLengths: ints.subarray(40, 42), out: new Float32Array(ints.buffer, 8, 48) }))
      .toThrow(/overlap options\.kvLengths/);
    expect(() => layer.forward(x, { batch: B, seqLens: ints.subarray(10, 12), out: f32 })).toThrow(/overlap options\.seqLens/);
  });

  test('a valid call after the errors writes and returns out', () => {
    const out = newOut();
    expect(layer.forward(x, { batch: B, out })).toBe(out);
    expect(out.every((v) => Number.isFinite(v) && v !== SENTINEL)).toBe(true);
  });
});
