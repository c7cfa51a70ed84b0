// linear(x, weight, bias?, options) and the Linear class: a fully connected layer on the packed
// SGEMM of the backend.
//   'out-in' (default): W [N, K], y[M, N] = x[M, K] · Wᵀ + b   (PyTorch nn.Linear)
//   'in-out':           W [K, N], y[M, N] = x[M, K] · W  + b   (GPT-2 Conv1D)
// K = inFeatures (required), N = outFeatures (optional: weight.length / K), M = x.length / K rows.
// Linear copies and packs the weight once; linear() packs it on every call (one O(N·K) copy).
// weightDtype 'bfloat16' | 'float16': weight (and bias, unless a Float32Array) are Uint16Arrays of
// bits; the weight stays 16-bit when packed, a half bias is widened once (it is N floats).
import type { Backend, GemmOp, PackedWeight } from './backend/types.js';
import { widenHalves } from './kernels/half.js';
import type {
  LinearAsyncOptions, LinearConfig, LinearForwardAsyncOptions, LinearForwardOptions, LinearOptions, WeightArray,
  WeightDtype, WeightLayout,
} from './types.js';
import {
  expectAllFinite, expectBoolean, expectChoice, expectDim, expectF32, expectOptions,
} from './validate.js';
import { allocateF32, copyF32, expectNoOverlap, typedArrayKind } from './validate-buffer.js';
import { callerError, expectFixedLength, expectSignal, withCallerStack } from './validate-async.js';
import { rowsOf } from './validate-tensor.js';
import {
  expectAllFiniteWeight, expectWeight, expectWeightBias, expectWeightDtype, rowsOfWeight,
} from './validate-weight.js';

export const WEIGHT_LAYOUTS: readonly WeightLayout[] = ['out-in', 'in-out'];
const LINEAR_OPTIONS = new Set(['inFeatures', 'outFeatures', 'weightLayout', 'weightDtype', 'out', 'checkFinite']);
const LINEAR_ASYNC_OPTIONS = new Set([...LINEAR_OPTIONS, 'signal']);
const LINEAR_CONFIG = new Set(['weight', 'bias', 'inFeatures', 'outFeatures', 'weightLayout', 'weightDtype', 'checkFinite']);
const FORWARD_OPTIONS = new Set(['out', 'checkFinite']);
const FORWARD_ASYNC_OPTIONS = new Set(['out', 'checkFinite', 'signal']);

/** Validated weight of a linear map: K in, N out, in the caller's layout and dtype. */
interface LinearWeight {
  K: number;
  N: number;
  outIn: boolean;
  dtype: WeightDtype;
  weight: WeightArray;
  /** The caller's bias (a Float32Array, or bits in `dtype`), or null. */
  bias: WeightArray | null;
}

/** A private float32 copy of a bias (a half one widened exactly). */
export function privateFloatBias(bias: WeightArray, dtype: WeightDtype): Float32Array {
  return typedArrayKind(bias) === 'Float32Array' ? copyF32(bias as Float32Array) : floatBias(bias, dtype);
}

/** A bias as the GEMM takes it: float32 (a half one widened, exactly, into a new array). */
export function floatBias(bias: WeightArray, dtype: WeightDtype): Float32Array {
  if (typedArrayKind(bias) === 'Float32Array') return bias as Float32Array;
  return widenHalves(bias as Uint16Array, dtype as 'bfloat16' | 'float16');
}

/** The opt-in checkFinite flag (undefined = off). */
function checkFiniteOption(name: string, v: unknown): boolean {
  return v !== undefined && expectBoolean(name, v);
}

function resolveWeight(
  where: string,
  weight: unknown,
  bias: unknown,
  inFeatures: unknown,
  outFeatures: unknown,
  layout: unknown,
  weightDtype: unknown,
): LinearWeight {
  const K = expectDim(`${where}.inFeatures`, inFeatures);
  const outIn = (layout === undefined ? 'out-in' : expectChoice(`${where}.weightLayout`, layout, WEIGHT_LAYOUTS)) === 'out-in';
  const dtype = expectWeightDtype(`${where}.weightDtype`, weightDtype);
  const wName = where === 'options' ? 'weight' : `${where}.weight`;
  let N: number;
  if (outFeatures === undefined) {
    N = rowsOfWeight(wName, weight, dtype, K, 'inFeatures');
  } else {
    N = expectDim(`${where}.outFeatures`, outFeatures);
  }
  const w = expectWeight(wName, weight, dtype, outIn ? { outFeatures: N, inFeatures: K } : { inFeatures: K, outFeatures: N });
  const bName = where === 'options' ? 'bias' : `${where}.bias`;
  const b = bias === undefined || bias === null ? null : expectWeightBias(bName, bias, dtype, { outFeatures: N });
  return { K, N, outIn, dtype, weight: w, bias: b };
}

/** Checks a linear() call and returns it as one GEMM (packing the weight for this backend). */
function planLinear(
  backend: Backend, x: unknown, weight: unknown, biasOrOptions: unknown, maybeOptions: unknown, isAsync: boolean,
): { op: GemmOp; signal: AbortSignal | undefined } {
  let bias = biasOrOptions;
  let options = maybeOptions;
  const isPlainObject = typeof biasOrOptions === 'object' && biasOrOptions !== null && !ArrayBuffer.isView(biasOrOptions);
  if (maybeOptions === undefined && isPlainObject) [bias, options] = [undefined, biasOrOptions];
  const o = expectOptions('options', options, isAsync ? LINEAR_ASYNC_OPTIONS : LINEAR_OPTIONS) as Partial<LinearOptions> & Record<string, unknown>;
  const lw = resolveWeight('options', weight, bias, o.inFeatures, o.outFeatures, o.weightLayout, o.weightDtype);
  const M = rowsOf('x', x, lw.K, 'inFeatures');
  const signal = isAsync ? expectSignal('options.signal', o.signal) : undefined;
  const y = outputFor(o.out, M, lw.N, [['x', x as Float32Array], ['weight', lw.weight], ['bias', lw.bias]]);
  if (isAsync) expectFixedLength([['x', x as Float32Array], ['bias', lw.bias], ['options.out', o.out === undefined ? null : y]]);
  if (checkFiniteOption('options.checkFinite', o.checkFinite)) {
    expectAllFinite('x', x as Float32Array);
    expectAllFiniteWeight('weight', lw.weight, lw.dtype);
    if (lw.bias) expectAllFiniteWeight('bias', lw.bias, lw.dtype);
  }
  const packed = backend.packWeight(lw.weight, lw.outIn, lw.N, lw.K, lw.dtype);
  const b = lw.bias ? floatBias(lw.bias, lw.dtype) : null;
  return { op: { kind: 'gemm', x: x as Float32Array, M, K: lw.K, packed, N: lw.N, bias: b, y }, signal };
}

/** Runs one GEMM op off the event loop; resolves to its output. */
function gemmAsync(backend: Backend, op: GemmOp, signal: AbortSignal | undefined): Promise<Float32Array> {
  const caller = callerError();
  return backend.runAsync([op], signal).then(
    () => op.y,
    (err: unknown) => Promise.reject(withCallerStack(err, caller)),
  );
}

/** The backend-bound `linear` function. */
export function createLinear(backend: Backend) {
  /**
   * y = x·Wᵀ + b ('out-in', default) or x·W + b ('in-out'); x [M, inFeatures] → y [M, outFeatures].
   * `bias` may be omitted, null or undefined (`linear(x, w, options)` also works).
   */
  function linear(x: Float32Array, weight: WeightArray, bias: WeightArray | null | undefined, options: LinearOptions): Float32Array;
  function linear(x: Float32Array, weight: WeightArray, options: LinearOptions): Float32Array;
  function linear(x: unknown, weight: unknown, biasOrOptions: unknown, maybeOptions?: unknown): Float32Array {
    const { op } = planLinear(backend, x, weight, biasOrOptions, maybeOptions, false);
    backend.gemm(op.x, op.M, op.K, op.packed, op.N, op.bias, op.y);
    return op.y;
  }
  return linear;
}

/** The backend-bound `linearAsync` function: `linear` computed off the event loop. */
export function createLinearAsync(backend: Backend) {
  function linearAsync(x: Float32Array, weight: WeightArray, bias: WeightArray | null | undefined, options: LinearAsyncOptions): Promise<Float32Array>;
  function linearAsync(x: Float32Array, weight: WeightArray, options: LinearAsyncOptions): Promise<Float32Array>;
  function linearAsync(x: unknown, weight: unknown, biasOrOptions: unknown, maybeOptions?: unknown): Promise<Float32Array> {
    const { op, signal } = planLinear(backend, x, weight, biasOrOptions, maybeOptions, true);
    return gemmAsync(backend, op, signal);
  }
  return linearAsync;
}

/** `options.out` checked against [M, N] and the inputs, or a new array. */
function outputFor(
  out: unknown,
  M: number,
  N: number,
  inputs: ReadonlyArray<readonly [string, WeightArray | null]>,
): Float32Array {
  if (out === undefined) return allocateF32('the output (M*outFeatures)', M * N);
  const y = expectF32('options.out', out, { M, outFeatures: N });
  expectNoOverlap('options.out', y, inputs);
  return y;
}

/**
 * A fully connected layer whose weight is copied and packed once, at construction, into the
 * backend's panel format, then applied many times: `new Linear({ weight, bias?, inFeatures,
 * outFeatures?, weightLayout? })`, `.forward(x, { out? })` with x [M, inFeatures] → [M, outFeatures].
 * 'out-in' (default): weight [outFeatures, inFeatures], y = x·Wᵀ + b (PyTorch nn.Linear); 'in-out':
 * weight [inFeatures, outFeatures], y = x·W + b (GPT-2 Conv1D). `weightDtype: 'bfloat16' |
 * 'float16'`: the weight is a Uint16Array of bits, packed 16-bit (half the memory) and widened
 * exactly in the kernel. Same errors as `linear`.
 * Each face (`qkv`, `qkv/js`) binds it to its backend.
 * @example
 * const fc = new Linear({ weight: fcWeight, bias: fcBias, inFeatures: 768, outFeatures: 3072 });
 * const h = fc.forward(x);
 */
export class LinearBase {
  /** K: floats per input row. */
  readonly inFeatures: number;
  /** N: floats per output row. */
  readonly outFeatures: number;
  readonly weightLayout: WeightLayout;
  /** The dtype the weight was given (and is packed) in. */
  readonly weightDtype: WeightDtype;
  readonly #backend: Backend;
  readonly #packed: PackedWeight;
  readonly #bias: Float32Array | null;

  protected constructor(backend: Backend, config: LinearConfig) {
    const c = expectOptions('config', config, LINEAR_CONFIG) as Partial<LinearConfig> & Record<string, unknown>;
    const lw = resolveWeight('config', c.weight, c.bias, c.inFeatures, c.outFeatures, c.weightLayout, c.weightDtype);
    if (checkFiniteOption('config.checkFinite', c.checkFinite)) {
      expectAllFiniteWeight('config.weight', lw.weight, lw.dtype);
      if (lw.bias) expectAllFiniteWeight('config.bias', lw.bias, lw.dtype);
    }
    this.inFeatures = lw.K;
    this.outFeatures = lw.N;
    this.weightLayout = lw.outIn ? 'out-in' : 'in-out';
    this.weightDtype = lw.dtype;
    this.#backend = backend;
    this.#packed = backend.packWeight(lw.weight, lw.outIn, lw.N, lw.K, lw.dtype);
    this.#bias = lw.bias ? privateFloatBias(lw.bias, lw.dtype) : null;
  }

  /** x [M, inFeatures] → y [M, outFeatures] (written into `options.out` when given). */
  forward(x: Float32Array, options?: LinearForwardOptions): Float32Array {
    const { op } = this.#plan(x, options, false);
    this.#backend.gemm(op.x, op.M, op.K, op.packed, op.N, op.bias, op.y);
    return op.y;
  }

  /** {@link forward} computed off the event loop; `options.signal` aborts it before it starts. */
  forwardAsync(x: Float32Array, options?: LinearForwardAsyncOptions): Promise<Float32Array> {
    const { op, signal } = this.#plan(x, options, true);
    return gemmAsync(this.#backend, op, signal);
  }

  #plan(x: Float32Array, options: unknown, isAsync: boolean): { op: GemmOp; signal: AbortSignal | undefined } {
    const known = isAsync ? FORWARD_ASYNC_OPTIONS : FORWARD_OPTIONS;
    const o = (options === undefined ? {} : expectOptions('options', options, known)) as LinearForwardAsyncOptions & Record<string, unknown>;
    const M = rowsOf('x', x, this.inFeatures, 'inFeatures');
    const signal = isAsync ? expectSignal('options.signal', o.signal) : undefined;
    const y = outputFor(o.out, M, this.outFeatures, [['x', x]]);
    if (isAsync) expectFixedLength([['x', x], ['options.out', o.out === undefined ? null : y]]);
    if (checkFiniteOption('options.checkFinite', o.checkFinite)) expectAllFinite('x', x);
    const op: GemmOp = { kind: 'gemm', x, M, K: this.inFeatures, packed: this.#packed, N: this.outFeatures, bias: this.#bias, y };
    return { op, signal };
  }
}
