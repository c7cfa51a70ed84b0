// Checks of the weights of a Linear or MultiHeadAttention and their element type (weightDtype):
// a Float32Array for 'float32', a Uint16Array of bfloat16 / float16 bits for the half types.
// Every message names the tensor the caller wrote and the weightDtype that decides its type.
import type { WeightArray, WeightDtype } from './types.js';
import { expectChoice, expectTensor, typeError } from './validate.js';
import { lengthOf, typedArrayKind } from './validate-buffer.js';

export const WEIGHT_DTYPES: readonly WeightDtype[] = ['float32', 'bfloat16', 'float16'];

/** options.weightDtype (undefined = 'float32'). */
export function expectWeightDtype(name: string, v: unknown): WeightDtype {
  return v === undefined ? 'float32' : expectChoice(name, v, WEIGHT_DTYPES);
}

/** What a weight of this dtype must be, for a message about `actual`. */
function weightKind(dtype: WeightDtype, actual: unknown): string {
  if (dtype !== 'float32') return `Uint16Array of ${dtype} bits (weightDtype is '${dtype}')`;
  // Bits given without their dtype: say which option was missing.
  return typedArrayKind(actual) === 'Uint16Array'
    ? "Float32Array (a Uint16Array of bits needs weightDtype 'bfloat16' or 'float16')"
    : 'Float32Array';
}

/** A weight of the given dims, in the array type its dtype takes. */
export function expectWeight(name: string, v: unknown, dtype: WeightDtype, dims: Record<string, number>): WeightArray {
  const want = dtype === 'float32' ? 'Float32Array' : 'Uint16Array';
  if (typedArrayKind(v) !== want) throw typeError(name, weightKind(dtype, v), v);
  return dtype === 'float32' ? expectTensor(name, v, Float32Array, dims) : expectTensor(name, v, Uint16Array, dims);
}

/** A bias: a Float32Array whatever the dtype, or a Uint16Array of bits with a half dtype. */
export function expectWeightBias(name: string, v: unknown, dtype: WeightDtype, dims: Record<string, number>): WeightArray {
  if (typedArrayKind(v) === 'Float32Array') return expectTensor(name, v, Float32Array, dims);
  if (dtype !== 'float32' && typedArrayKind(v) === 'Uint16Array') return expectTensor(name, v, Uint16Array, dims);
  throw typeError(name, dtype === 'float32' ? weightKind(dtype, v) : `Float32Array or Uint16Array of ${dtype} bits`, v);
}

/** The row count of a weight holding rows × `width` values (its dtype's array type), ≥ 1. */
export function rowsOfWeight(name: string, v: unknown, dtype: WeightDtype, width: number, widthName: string): number {
  const want = dtype === 'float32' ? 'Float32Array' : 'Uint16Array';
  if (typedArrayKind(v) !== want) throw typeError(name, weightKind(dtype, v), v);
  const length = lengthOf(v as ArrayBufferView);
  if (length === 0 || length % width !== 0) {
    throw new RangeError(`Expected ${name}.length to be a positive multiple of ${widthName} = ${width} but received ${length}`);
  }
  return length / width;
}

/**
 * checkFinite for a weight of either kind: a RangeError naming the first NaN or ±Infinity. A
 * half is non-finite when its exponent bits are all ones (bfloat16 0x7f80, float16 0x7c00).
 */
export function expectAllFiniteWeight(name: string, w: WeightArray, dtype: WeightDtype): void {
  if (dtype === 'float32' || typedArrayKind(w) === 'Float32Array') {
    const a = w as Float32Array;
    for (let i = 0, n = lengthOf(a); i < n; i++) {
      const x = a[i]!;
      if (x - x !== 0) throw new RangeError(`Expected finite values in ${name} but ${name}[${i}] is ${x}`);
    }
    return;
  }
  const exponent = dtype === 'bfloat16' ? 0x7f80 : 0x7c00;
  const mantissa = dtype === 'bfloat16' ? 0x007f : 0x03ff;
  const h = w as Uint16Array;
  for (let i = 0, n = lengthOf(h); i < n; i++) {
    const bits = h[i]!;
    if ((bits & exponent) === exponent) {
      const what = (bits & mantissa) !== 0 ? 'NaN' : bits & 0x8000 ? '-Infinity' : 'Infinity';
      throw new RangeError(`Expected finite values in ${name} but ${name}[${i}] is ${what}`);
    }
  }
}
