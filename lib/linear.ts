// linear(x, weight, bias?, options) and the Linear class: a fully connected layer on the packed
// SGEMM of the backend.
//   'out-in' (default): W [N, K], y[M, N] = x[M, K] · Wᵀ + b   (PyTorch nn.Linear)
//   'in-out':           W [K, N], y[M, N] = x[M, K] · W  + b   (GPT-2 Conv1D)
// K = inFeatures (required), N = outFeatures (optional: weight.length / K), M = x.length / K rows.
// Linear copies and packs the weight once; linear() packs it on every call (one O(N·K) copy).
import type { Backend } from './backend.js';
import type { LinearConfig, LinearForwardOptions, LinearOptions, WeightLayout } from './types.js';
import {
  expectChoice,
  expectDim,
  expectF32,
  expectKnownKeys,
  expectNoOverlap,
  expectObject,
  typeError,
} from './validate.js';

export const WEIGHT_LAYOUTS: readonly WeightLayout[] = ['out-in', 'in-out'];
const LINEAR_OPTIONS = new Set(['inFeatures', 'outFeatures', 'weightLayout', 'out']);
const LINEAR_CONFIG = new Set(['weight', 'bias', 'inFeatures', 'outFeatures', 'weightLayout']);
const FORWARD_OPTIONS = new Set(['out']);

/** Validated weight of a linear map: K in, N out, in the caller's layout. */
interface LinearWeight {
  K: number;
  N: number;
  outIn: boolean;
  weight: Float32Array;
  bias: Float32Array | null;
}

/** `name` is a Float32Array of rows × `width` floats; returns the row count (≥ 1). */
export function rowsOf(name: string, x: unknown, width: number, widthName: string): number {
  if (!(x instanceof Float32Array)) throw typeError(name, 'Float32Array', x);
  if (x.length === 0 || x.length % width !== 0) {
    throw new RangeError(
      `Expected ${name}.length to be a positive multiple of ${widthName} = ${width} but received ${x.length}`,
    );
  }
  return x.length / width;
}

function resolveWeight(
  where: string,
  weight: unknown,
  bias: unknown,
  inFeatures: unknown,
  outFeatures: unknown,
  layout: unknown,
): LinearWeight {
  const K = expectDim(`${where}.inFeatures`, inFeatures);
  const outIn = (layout === undefined ? 'out-in' : expectChoice(`${where}.weightLayout`, layout, WEIGHT_LAYOUTS)) === 'out-in';
  const wName = where === 'options' ? 'weight' : `${where}.weight`;
  let N: number;
  if (outFeatures === undefined) {
    N = rowsOf(wName, weight, K, 'inFeatures');
  } else {
    N = expectDim(`${where}.outFeatures`, outFeatures);
  }
  const w = expectF32(wName, weight, outIn ? { outFeatures: N, inFeatures: K } : { inFeatures: K, outFeatures: N });
  const bName = where === 'options' ? 'bias' : `${where}.bias`;
  const b = bias === undefined || bias === null ? null : expectF32(bName, bias, { outFeatures: N });
  return { K, N, outIn, weight: w, bias: b };
}

/** The backend-bound `linear` function. */
export function createLinear(backend: Backend) {
  /**
   * y = x·Wᵀ + b ('out-in', default) or x·W + b ('in-out'); x [M, inFeatures] → y [M, outFeatures].
   * `bias` may be omitted, null or undefined (`linear(x, w, options)` also works).
   */
  function linear(x: Float32Array, weight: Float32Array, bias: Float32Array | null | undefined, options: LinearOptions): Float32Array;
  function linear(x: Float32Array, weight: Float32Array, options: LinearOptions): Float32Array;
  function linear(x: unknown, weight: unknown, biasOrOptions: unknown, maybeOptions?: unknown): Float32Array {
    let bias = biasOrOptions;
    let options = maybeOptions;
    const isPlainObject = typeof biasOrOptions === 'object' && biasOrOptions !== null && !ArrayBuffer.isView(biasOrOptions);
    if (maybeOptions === undefined && isPlainObject) [bias, options] = [undefined, biasOrOptions];
    const o = expectObject('options', options) as Partial<LinearOptions> & Record<string, unknown>;
    expectKnownKeys('options', o, LINEAR_OPTIONS);
    if (bias !== undefined && bias !== null && !(bias instanceof Float32Array)) {
      throw typeError('bias', 'a Float32Array, null or undefined', bias);
    }
    const lw = resolveWeight('options', weight, bias, o.inFeatures, o.outFeatures, o.weightLayout);
    const M = rowsOf('x', x, lw.K, 'inFeatures');
    const y = outputFor(o.out, M, lw.N, [['x', x as Float32Array], ['weight', lw.weight], ['bias', lw.bias]]);
    const packed = backend.packWeight(lw.weight, lw.outIn, lw.N, lw.K);
    backend.gemm(x as Float32Array, M, lw.K, packed, lw.N, lw.bias, y);
    return y;
  }
  return linear;
}

/** `options.out` checked against [M, N] and the inputs, or a new array. */
function outputFor(
  out: unknown,
  M: number,
  N: number,
  inputs: ReadonlyArray<readonly [string, Float32Array | null]>,
): Float32Array {
  if (out === undefined) return new Float32Array(M * N);
  const y = expectF32('options.out', out, { M, outFeatures: N });
  expectNoOverlap('options.out', y, inputs);
  return y;
}

/**
 * A linear layer whose weight is copied and packed once, at construction, into the backend's
 * panel format; `forward` then multiplies many times. Subclassed in lib/index.ts and
 * lib/js/index.ts to bind the backend.
 */
export class LinearBase {
  /** K: floats per input row. */
  readonly inFeatures: number;
  /** N: floats per output row. */
  readonly outFeatures: number;
  readonly weightLayout: WeightLayout;
  readonly #backend: Backend;
  readonly #packed: Float32Array;
  readonly #bias: Float32Array | null;

  protected constructor(backend: Backend, config: LinearConfig) {
    const c = expectObject('config', config) as Partial<LinearConfig> & Record<string, unknown>;
    expectKnownKeys('config', c, LINEAR_CONFIG);
    const lw = resolveWeight('config', c.weight, c.bias, c.inFeatures, c.outFeatures, c.weightLayout);
    this.inFeatures = lw.K;
    this.outFeatures = lw.N;
    this.weightLayout = lw.outIn ? 'out-in' : 'in-out';
    this.#backend = backend;
    this.#packed = backend.packWeight(lw.weight, lw.outIn, lw.N, lw.K);
    this.#bias = lw.bias ? lw.bias.slice() : null;
  }

  /** x [M, inFeatures] → y [M, outFeatures] (written into `options.out` when given). */
  forward(x: Float32Array, options?: LinearForwardOptions): Float32Array {
    const o = (options === undefined ? {} : expectObject('options', options)) as LinearForwardOptions & Record<string, unknown>;
    expectKnownKeys('options', o, FORWARD_OPTIONS);
    const M = rowsOf('x', x, this.inFeatures, 'inFeatures');
    const y = outputFor(o.out, M, this.outFeatures, [['x', x]]);
    this.#backend.gemm(x, M, this.inFeatures, this.#packed, this.outFeatures, this.#bias, y);
    return y;
  }
}
