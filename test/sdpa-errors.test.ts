// Every TypeError and RangeError of DESIGN.md, on every backend, and proof that nothing was
// written to `out` (or to weights/scores) when a call threw.
import { describe, expect, test } from 'vitest';
import { nativeBinding } from '../lib/backend/select.js';
import { fill as fillWith, runners, thrownBy } from './helpers.js';

const B = 2, H = 4, Hkv = 2, Sq = 3, Sk = 5, D = 4, Dv = 6;
const base = { batch: B, heads: H, kvHeads: Hkv, seqQ: Sq, seqK: Sk, headDim: D, valueDim: Dv };
const fill = (n: number) => fillWith(n, Math.sin);
const q = fill(B * H * Sq * D);
const k = fill(B * Hkv * Sk * D);
const v = fill(B * Hkv * Sk * Dv);
const SENTINEL = 12345;

interface BadCall {
  name: string;
  args: () => [unknown, unknown, unknown, Record<string, unknown>];
  error: typeof TypeError | typeof RangeError;
  message: RegExp;
}

const opts = (extra: Record<string, unknown>) => ({ ...base, ...extra });
const call = (extra: Record<string, unknown>, qq: unknown = q, kk: unknown = k, vv: unknown = v) =>
  () => [qq, kk, vv, opts(extra)] as [unknown, unknown, unknown, Record<string, unknown>];
const without = (key: string) => () => {
  const o: Record<string, unknown> = { ...base };
  delete o[key];
  return [q, k, v, o] as [unknown, unknown, unknown, Record<string, unknown>];
};

const badCalls: BadCall[] = [
  // Wrong kinds of value: TypeError naming the argument.
  { name: 'q not a Float32Array', args: call({}, new Float64Array(q.length)), error: TypeError, message: /Float32Array for q but received Float64Array\(96\)/ },
  { name: 'k a plain array', args: call({}, q, Array.from(k)), error: TypeError, message: /for k but received Array/ },
  { name: 'v undefined', args: () => [q, k, undefined, opts({})], error: TypeError, message: /for v but received undefined/ },
  { name: 'options not an object', args: () => [q, k, v, 7 as never], error: TypeError, message: /an object for options/ },
  { name: 'unknown option (typo)', args: call({ casual: true }), error: TypeError, message: /Unknown option 'casual'.*did you mean 'causal'/ },
  { name: 'heads missing', args: without('heads'), error: TypeError, message: /options\.heads but received undefined/ },
  { name: 'seqQ missing', args: without('seqQ'), error: TypeError, message: /options\.seqQ/ },
  { name: 'headDim missing', args: without('headDim'), error: TypeError, message: /options\.headDim/ },
  { name: 'heads a string', args: call({ heads: '4' }), error: TypeError, message: /options\.heads but received '4'/ },
  { name: 'layout not a string', args: call({ layout: 1 }), error: TypeError, message: /options\.layout/ },
  { name: 'causal a number', args: call({ causal: 1 }), error: TypeError, message: /options\.causal/ },
  { name: 'scale a string', args: call({ scale: '0.5' }), error: TypeError, message: /options\.scale/ },
  { name: 'mask data Float64Array', args: call({ mask: { data: new Float64Array(Sk), dims: [Sk] } }), error: TypeError, message: /options\.mask\.data but received Float64Array/ },
  { name: 'mask without dims', args: call({ mask: { data: new Float32Array(Sk) } }), error: TypeError, message: /options\.mask\.dims/ },
  { name: 'mask unknown key', args: call({ mask: { data: new Float32Array(Sk), dims: [Sk], shape: [Sk] } }), error: TypeError, message: /Unknown option 'shape' in options\.mask/ },
  { name: 'kvLengths Uint32Array', args: call({ kvLengths: new Uint32Array(B) }), error: TypeError, message: /Int32Array for options\.kvLengths/ },
  { name: 'queryOffset a string', args: call({ queryOffset: '1' }), error: TypeError, message: /options\.queryOffset/ },
  { name: 'out a Float64Array', args: call({ out: new Float64Array(B * H * Sq * Dv) }), error: TypeError, message: /Float32Array for options\.out/ },
  { name: 'weights a number', args: call({ weights: 1 }), error: TypeError, message: /options\.weights/ },
  { name: 'scores an array', args: call({ scores: [] }), error: TypeError, message: /options\.scores/ },
  // Unknown string values: RangeError.
  { name: 'unknown layout', args: call({ layout: 'bsdh' }), error: RangeError, message: /'bhsd' \| 'bshd' for options\.layout but received 'bsdh'/ },
  { name: 'unknown causal mode', args: call({ causal: 'top-right' }), error: RangeError, message: /options\.causal but received 'top-right'/ },
  // Wrong sizes, dims and values: RangeError.
  { name: 'heads 0', args: call({ heads: 0 }), error: RangeError, message: /options\.heads but received 0/ },
  { name: 'batch negative', args: call({ batch: -1 }), error: RangeError, message: /options\.batch but received -1/ },
  { name: 'seqQ fractional', args: call({ seqQ: 2.5 }), error: RangeError, message: /options\.seqQ but received 2\.5/ },
  { name: 'headDim NaN', args: call({ headDim: NaN }), error: RangeError, message: /options\.headDim but received NaN/ },
  { name: 'dims beyond int32', args: call({ seqK: 2 ** 31 }), error: RangeError, message: /options\.seqK/ },
  { name: 'dims whose product passes 2^53', args: call({ batch: 2 ** 30, heads: 2 ** 30, kvHeads: 1 }), error: RangeError, message: /safe integer/ },
  { name: 'heads not a multiple of kvHeads', args: call({ kvHeads: 3 }), error: RangeError, message: /divisor of heads = 4 for options\.kvHeads but received 3/ },
  { name: 'q of the wrong length', args: call({}, q.subarray(1)), error: RangeError, message: /Expected q\.length to be B\*H\*Sq\*D = 2\*4\*3\*4 = 96 but received 95/ },
  { name: 'k of the wrong length (bshd names)', args: call({ layout: 'bshd' }, q, k.subarray(0, 8)), error: RangeError, message: /k\.length to be B\*Sk\*Hkv\*D = 2\*5\*2\*4 = 80 but received 8/ },
  { name: 'v of the wrong length', args: call({ valueDim: 5 }), error: RangeError, message: /v\.length to be B\*Hkv\*Sk\*Dv/ },
  { name: 'scale Infinity', args: call({ scale: Infinity }), error: RangeError, message: /finite number for options\.scale/ },
  { name: 'softcap negative', args: call({ softcap: -1 }), error: RangeError, message: /options\.softcap but received -1/ },
  { name: 'softcap NaN', args: call({ softcap: NaN }), error: RangeError, message: /options\.softcap but received NaN/ },
  { name: 'mask that does not broadcast', args: call({ mask: { data: new Float32Array(4 * Sk), dims: [4, Sk] } }), error: RangeError, message: /1 or Sq = 3 .*options\.mask\.dims\[0\] but received 4/ },
  { name: 'mask of rank 5', args: call({ mask: { data: new Float32Array(Sk), dims: [1, 1, 1, 1, Sk] } }), error: RangeError, message: /options\.mask\.dims/ },
  { name: 'mask data of the wrong length', args: call({ mask: { data: new Uint8Array(Sk + 1), dims: [1, Sk] } }), error: RangeError, message: /options\.mask\.data\.length/ },
  { name: 'mask dim 0', args: call({ mask: { data: new Uint8Array(0), dims: [0, Sk] } }), error: RangeError, message: /options\.mask\.dims\[0\]/ },
  { name: 'kvLengths of the wrong length', args: call({ kvLengths: new Int32Array(B + 1) }), error: RangeError, message: /options\.kvLengths\.length to be B = 2/ },
  { name: 'kvLengths above seqK', args: call({ kvLengths: Int32Array.of(1, Sk + 1) }), error: RangeError, message: /options\.kvLengths\[1\] but received 6/ },
  { name: 'kvLengths negative', args: call({ kvLengths: Int32Array.of(-1, 0) }), error: RangeError, message: /options\.kvLengths\[0\] but received -1/ },
  { name: 'queryOffset fractional', args: call({ queryOffset: 1.5 }), error: RangeError, message: /options\.queryOffset/ },
  { name: 'queryOffset array of the wrong length', args: call({ queryOffset: new Int32Array(1) }), error: RangeError, message: /options\.queryOffset\.length/ },
  { name: 'out of the wrong length', args: call({ out: new Float32Array(5) }), error: RangeError, message: /options\.out\.length to be B\*H\*Sq\*Dv = 2\*4\*3\*6 = 144 but received 5/ },
  { name: 'weights of the wrong length', args: call({ weights: new Float32Array(3) }), error: RangeError, message: /options\.weights\.length to be B\*H\*Sq\*Sk/ },
  { name: 'scores of the wrong length', args: call({ scores: new Float32Array(3) }), error: RangeError, message: /options\.scores\.length/ },
];

describe.each(runners)('errors [$name]', (runner) => {
  test.each(badCalls)('$name', ({ args, error, message }) => {
    const [qq, kk, vv, o] = args();
    const isObject = typeof o === 'object' && o !== null;
    const out = isObject && o.out instanceof Float32Array ? o.out : new Float32Array(B * H * Sq * Dv);
    out.fill(SENTINEL);
    const withOut = isObject && !('out' in o) ? { ...o, out } : o;
    const thrown = thrownBy(() => runner.sdpa(qq as Float32Array, kk as Float32Array, vv as Float32Array, withOut));
    expect(thrown).toBeInstanceOf(error);
    expect((thrown as Error).message).toMatch(message);
    expect(out.every((x) => x === SENTINEL)).toBe(true);
  });

  test('out, weights and scores must not overlap an input or each other', () => {
    const shared = new Float32Array(1000);
    const qv = shared.subarray(0, q.length);
    qv.set(q);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ out: shared.subarray(50, 50 + B * H * Sq * Dv) }, /options\.out not to overlap q/],
      [{ weights: shared.subarray(95, 95 + B * H * Sq * Sk) }, /options\.weights not to overlap q/],
    ];
    for (const [extra, message] of cases) {
      const before = shared.slice();
      expect(() => runner.sdpa(qv, k, v, opts(extra))).toThrow(RangeError);
      expect(() => runner.sdpa(qv, k, v, opts(extra))).toThrow(message);
      expect(shared).toEqual(before);
    }
    const both = new Float32Array(B * H * Sq * Sk + 10);
    const weights = both.subarray(0, B * H * Sq * Sk);
    const scores = both.subarray(10);
    expect(() => runner.sdpa(q, k, v, opts({ weights, scores }))).toThrow(/options\.scores not to overlap options\.weights/);
    const out = new Float32Array(B * H * Sq * Dv);
    const mask = { data: new Float32Array(out.buffer, 0, Sk), dims: [Sk] };
    expect(() => runner.sdpa(q, k, v, opts({ out, mask }))).toThrow(/options\.out not to overlap options\.mask\.data/);
  });

  test('non-overlapping views of one buffer are fine', () => {
    const shared = new Float32Array(q.length + B * H * Sq * Dv);
    shared.set(q);
    const out = shared.subarray(q.length);
    expect(runner.sdpa(shared.subarray(0, q.length), k, v, opts({ out }))).toBe(out);
  });

  test('NaN and Infinity in data are not errors', () => {
    const qn = q.slice();
    qn[0] = NaN;
    qn[5] = Infinity;
    expect(() => runner.sdpa(qn, k, v, base)).not.toThrow();
  });
});

// The binding is reachable directly, so it re-checks every length and every value that could
// move a pointer, with the same error classes, before the kernel runs.
describe.runIf(nativeBinding)('native binding re-checks', () => {
  const binding = nativeBinding!;
  const dims = (over: Partial<Record<number, number>> = {}) => {
    const d = Int32Array.of(B, H, Hkv, Sq, Sk, D, Dv, 0, 0, 1, 1, 1, 1, 0, -1, -1);
    for (const [i, x] of Object.entries(over)) d[Number(i)] = x!;
    return d;
  };
  const out = () => new Float32Array(B * H * Sq * Dv);
  type Args = Parameters<typeof binding.sdpa>;
  const good = (): Args => [q, k, v, out(), dims(), 0.5, 0, null, null, null, null, null, null, null, null];
  const cases: Array<[string, (a: Args) => void, typeof TypeError | typeof RangeError]> = [
    ['q too short', (a) => { a[0] = q.subarray(1); }, RangeError],
    ['k as Float64Array', (a) => { a[1] = new Float64Array(k.length) as never; }, TypeError],
    ['v too long', (a) => { a[2] = new Float32Array(v.length + 1); }, RangeError],
    ['out too short', (a) => { a[3] = new Float32Array(1); }, RangeError],
    ['dims too short', (a) => { a[4] = new Int32Array(3); }, RangeError],
    ['dims Float32Array', (a) => { a[4] = new Float32Array(14) as never; }, TypeError],
    ['dims of the old length 13', (a) => { a[4] = dims().subarray(0, 13); }, RangeError],
    ['a bad kvDtype code', (a) => { a[4] = dims({ 13: 2 }); }, RangeError],
    ['kvDtype float16 with Float32Array k', (a) => { a[4] = dims({ 13: 1 }); a[2] = new Uint16Array(v.length); }, TypeError],
    ['kvDtype float16 with a short Uint16Array v', (a) => { a[4] = dims({ 13: 1 }); a[1] = new Uint16Array(k.length); a[2] = new Uint16Array(v.length - 1); }, RangeError],
    ['kvDtype float32 with Uint16Array k', (a) => { a[1] = new Uint16Array(k.length); }, TypeError],
    ['a negative dim', (a) => { a[4] = dims({ 3: -1 }); }, RangeError],
    ['H not a multiple of Hkv', (a) => { a[4] = dims({ 2: 3 }); }, RangeError],
    ['a bad layout code', (a) => { a[4] = dims({ 7: 2 }); }, RangeError],
    ['a mask dim that does not broadcast', (a) => { a[4] = dims({ 12: 2 }); a[7] = new Float32Array(2); }, RangeError],
    ['a mask shorter than its dims', (a) => { a[4] = dims({ 12: Sk }); a[7] = new Uint8Array(Sk - 1); }, RangeError],
    ['a mask of another type', (a) => { a[4] = dims({ 12: Sk }); a[7] = new Int8Array(Sk) as never; }, TypeError],
    ['causal without offsets', (a) => { a[4] = dims({ 8: 1 }); }, RangeError],
    ['offsets too short', (a) => { a[4] = dims({ 8: 1 }); a[8] = new Int32Array(1); }, RangeError],
    ['kvLengths past Sk', (a) => { a[9] = Int32Array.of(Sk, Sk + 1); }, RangeError],
    ['kvLengths negative', (a) => { a[9] = Int32Array.of(-1, 0); }, RangeError],
    ['weights too short', (a) => { a[10] = new Float32Array(1); }, RangeError],
    ['scores too long', (a) => { a[11] = new Float32Array(B * H * Sq * Sk + 1); }, RangeError],
    ['scale NaN', (a) => { a[5] = NaN; }, RangeError],
    ['softcap negative', (a) => { a[6] = -1; }, RangeError],
    ['dims whose product passes 2^40', (a) => { a[4] = dims({ 0: 2 ** 30, 3: 2 ** 30 }); }, RangeError],
  ];
  test.each(cases)('%s', (_name, mutate, error) => {
    const args = good();
    mutate(args);
    expect(() => binding.sdpa(...args)).toThrow(error);
  });
  test('the unmodified call succeeds', () => {
    const args = good();
    expect(binding.sdpa(...args)).toBe(args[3]);
  });
  test('kvDtype float16 with Uint16Array k and v of the right length succeeds', () => {
    const args = good();
    args[4] = dims({ 13: 1 });
    args[1] = new Uint16Array(k.length).fill(0x3c00);  // 1.0
    args[2] = new Uint16Array(v.length).fill(0x4000);  // 2.0
    const out = binding.sdpa(...args);
    expect(out.every((x) => x === 2)).toBe(true);
  });
  test('a detached buffer is rejected, not read', () => {
    const args = good();
    const qd = q.slice();
    structuredClone(qd.buffer, { transfer: [qd.buffer] });
    args[0] = qd;
    expect(() => binding.sdpa(...args)).toThrow(RangeError);
  });
});
