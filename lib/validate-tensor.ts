// Checks of tensors and the small arrays that steer indexing: row counts, masks, per-sequence
// lengths and offsets, and the weights/scores outputs. Same message format as lib/validate.ts,
// whose primitives these build on; every entry point (scaledDotProductAttention, linear, the layer)
// uses these, so one argument gets one message whichever function it was given to.
import {
  expectDim, expectF32, expectInt, expectOptions, expectTensor, product, rangeError,
  typeError,
} from './validate.js';
import { lengthOf, snapshotInt32, typedArrayKind } from './validate-buffer.js';
import { WINDOW_UNBOUNDED } from './plan.js';

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/** `name` is a Float32Array of rows × `width` floats; returns the row count (≥ 1). */
export function rowsOf(name: string, x: unknown, width: number, widthName: string): number {
  if (typedArrayKind(x) !== 'Float32Array') throw typeError(name, 'Float32Array', x);
  const length = lengthOf(x as Float32Array); // not x.length: see lengthOf
  if (length === 0 || length % width !== 0) {
    throw new RangeError(
      `Expected ${name}.length to be a positive multiple of ${widthName} = ${width} but received ${length}`,
    );
  }
  return length / width;
}

/**
 * k or v: a Float32Array of the given dims. When its length is wrong but a whole number of keys
 * (`perKey` floats each) and seqK was not given, the message says how many keys it holds and
 * points at options.seqK (k longer than q is the usual cause).
 */
export function expectKeyTensor(
  name: string, v: unknown, dims: Record<string, number>, perKey: number, seqKGiven: boolean,
): Float32Array {
  if (typedArrayKind(v) === 'Float32Array' && lengthOf(v as Float32Array) === product(name, dims)) return v as Float32Array;
  return expectF32(name, v, dims, (length) => !seqKGiven && length > 0 && length % perKey === 0
    ? `${length / perKey} keys? give options.seqK when it differs from seqQ`
    : undefined);
}

/**
 * Int32Array [B] with every value in [0, bound]: kvLengths (bound Sk) and seqLens (bound S). The
 * copy that was checked is returned, and is the one used.
 */
function expectLengths(name: string, v: unknown, B: number, bound: number, boundName: string): Int32Array {
  const lengths = snapshotInt32(expectTensor(name, v, Int32Array, { B }));
  for (let b = 0; b < B; b++) {
    if (lengths[b]! < 0 || lengths[b]! > bound) {
      throw rangeError(`${name}[${b}]`, `an integer in [0, ${boundName} = ${bound}]`, lengths[b]);
    }
  }
  return lengths;
}

/** options.kvLengths: keys j ≥ kvLengths[b] are blocked. */
export function expectKvLengths(v: unknown, B: number, Sk: number): Int32Array {
  return expectLengths('options.kvLengths', v, B, Sk, 'seqK');
}

/** options.seqLens of a layer call: query rows i ≥ seqLens[b] are padding. */
export function expectSeqLens(v: unknown, B: number, S: number): Int32Array {
  return expectLengths('options.seqLens', v, B, S, 'seqLen');
}

/** options.queryOffset: an integer for every sequence, or an Int32Array [B]; as [B]. */
export function expectQueryOffset(v: unknown, B: number): Int32Array {
  if (typedArrayKind(v) === 'Int32Array') return snapshotInt32(expectTensor('options.queryOffset', v, Int32Array, { B }));
  if (typeof v !== 'number') throw typeError('options.queryOffset', 'an integer or an Int32Array', v);
  return new Int32Array(B).fill(expectInt('options.queryOffset', v, INT32_MIN, INT32_MAX));
}

/** A mask after its checks: its data and its dims right-aligned and padded with 1 to [B, H, Sq, Sk]. */
export interface CheckedMask {
  data: Float32Array | Uint8Array;
  dims: [number, number, number, number];
}

const MASK_KEYS = new Set(['data', 'dims']);

/** A mask whose dims, right-aligned, are each 1 or the full size of [B, H, Sq, Sk]. */
export function expectMask(v: unknown, B: number, H: number, Sq: number, Sk: number): CheckedMask {
  const m = expectOptions('options.mask', v, MASK_KEYS, ArrayBuffer.isView(v)
    ? 'a mask object { data, dims } (e.g. { data: mask, dims: [Sq, Sk] }), not a bare typed array'
    : 'a mask object { data, dims }');
  const data = m.data;
  const kind = typedArrayKind(data);
  if (kind !== 'Float32Array' && kind !== 'Uint8Array') {
    throw typeError('options.mask.data', 'Float32Array (additive) or Uint8Array (boolean)', data);
  }
  if (!Array.isArray(m.dims)) throw typeError('options.mask.dims', 'an array of dims', m.dims);
  // Read once: a Proxy or getter answering differently for the broadcast and the length checks
  // cannot make them disagree.
  const dimsArg: unknown[] = Array.from(m.dims as unknown[]);
  if (dimsArg.length < 1 || dimsArg.length > 4) {
    throw rangeError('options.mask.dims', 'an array of 1 to 4 dims', dimsArg);
  }
  const full = [B, H, Sq, Sk];
  const fullNames = ['B', 'H', 'Sq', 'Sk'];
  const dims: [number, number, number, number] = [1, 1, 1, 1];
  const pad = 4 - dimsArg.length;
  for (let i = 0; i < dimsArg.length; i++) {
    const axis = pad + i;
    const d = expectDim(`options.mask.dims[${i}]`, dimsArg[i]);
    if (d !== 1 && d !== full[axis]) {
      throw rangeError(`options.mask.dims[${i}]`, `1 or ${fullNames[axis]} = ${full[axis]} (mask dims broadcast to [B, H, Sq, Sk], right-aligned)`, d);
    }
    dims[axis] = d;
  }
  const ctor = kind === 'Float32Array' ? Float32Array : Uint8Array;
  const checked = expectTensor('options.mask.data', data, ctor as typeof Float32Array, Object.fromEntries(
    dimsArg.map((d, i) => [`dims[${i}]`, d as number]),
  ) as Record<string, number>);
  return { data: checked as Float32Array | Uint8Array, dims };
}

/**
 * options.weights / options.scores: false (or absent), true (allocate and return one), or a
 * Float32Array [B, H, Sq, Sk] to fill.
 */
export function expectMaterialized(name: string, v: unknown, dims: Record<string, number>): boolean | Float32Array {
  if (v === undefined || v === false) return false;
  if (v === true) {
    product(name, dims);
    return true;
  }
  if (typedArrayKind(v) === 'Float32Array') return expectF32(name, v, dims);
  throw typeError(name, 'a boolean or a Float32Array', v);
}

/** A window checked: each side an int32 count of keys, or WINDOW_UNBOUNDED (−1). */
export interface CheckedWindow {
  left: number;
  right: number;
}

const WINDOW_OPTIONS = new Set(['left', 'right']);
const WINDOW_SIDE = 'an integer >= 0 (or undefined / Infinity: unbounded)';

// One side of options.window: omitted or Infinity = unbounded (−1); an integer ≥ 0 otherwise.
function expectWindowSide(name: string, v: unknown): number {
  if (v === undefined || v === Infinity) return WINDOW_UNBOUNDED;
  if (typeof v !== 'number') throw typeError(name, WINDOW_SIDE, v);
  if (!Number.isInteger(v) || v < 0) throw rangeError(name, WINDOW_SIDE, v);
  return v;
}

/** options.window (or config.window): `{ left?, right? }`, read once (a copy of the known keys); the sides as given. */
export function expectWindow(v: unknown, name = 'options.window'): CheckedWindow {
  const o = expectOptions(name, v, WINDOW_OPTIONS, 'an object { left?, right? }');
  return { left: expectWindowSide(`${name}.left`, o.left), right: expectWindowSide(`${name}.right`, o.right) };
}

/**
 * The window a call's positions make of the sides given: a side that bounds no row (left at least
 * the largest position, right at least Sk − 1 − the smallest) is unbounded, so the kernels skip its
 * checks. What is left must fit the binding's int32 slots: a side past INT32_MAX that still bounds
 * a row (positions near the int32 limits) is a RangeError rather than a silently smaller window.
 */
export function resolveWindow(w: CheckedWindow, offsets: Int32Array, Sq: number, Sk: number): CheckedWindow {
  let minPos = Infinity, maxPos = -Infinity;
  for (let b = 0; b < offsets.length; b++) {
    minPos = Math.min(minPos, offsets[b]!);
    maxPos = Math.max(maxPos, offsets[b]! + Sq - 1);
  }
  const left = w.left !== WINDOW_UNBOUNDED && w.left >= maxPos ? WINDOW_UNBOUNDED : w.left;
  const right = w.right !== WINDOW_UNBOUNDED && w.right >= Sk - 1 - minPos ? WINDOW_UNBOUNDED : w.right;
  const inRange = `an integer in [0, ${INT32_MAX}], or one that bounds no row (unbounded)`;
  if (left > INT32_MAX) throw rangeError('options.window.left', inRange, left);
  if (right > INT32_MAX) throw rangeError('options.window.right', inRange, right);
  return { left, right };
}

/** A per-head Float32Array [H] (options.sinks, options.alibi). */
export function expectPerHead(name: string, v: unknown, H: number): Float32Array {
  return expectF32(name, v, { H });
}
