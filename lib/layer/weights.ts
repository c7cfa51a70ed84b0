// MultiHeadAttention's constructor arguments: validated once, then every projection copied and
// packed into the backend's panel format. E embedDim, H numHeads, Hkv numKvHeads, Dh headDim.
//   'out-in': wq [H·Dh, E], wk wv [Hkv·Dh, E], wo [E, H·Dh]   (y = x·Wᵀ + b)
//   'in-out': wq [E, H·Dh], wk wv [E, Hkv·Dh], wo [H·Dh, E]   (y = x·W + b)
//   PyTorch form: inProjWeight [3E, E] ('out-in') or [E, 3E] ('in-out'), inProjBias [3E],
//                 outProjWeight [E, E], outProjBias [E]; needs Hkv = H and H·Dh = E.
// Each projection is packed on its own: the layer runs Q, K and V as three GEMMs into three dense
// 'bshd' buffers (see forward.ts for why not one fused GEMM).
// weightDtype 'bfloat16' | 'float16': every weight is a Uint16Array of bits, packed 16-bit; a bias
// is a Float32Array or bits of the same dtype (widened once, exactly).
import type { Backend, PackedWeight } from '../backend/types.js';
import { WEIGHT_LAYOUTS, privateFloatBias } from '../linear.js';
import type { MultiHeadAttentionConfig, WeightArray, WeightDtype, WeightLayout } from '../types.js';
import {
  expectBoolean,
  expectChoice,
  expectDim,
  expectOptions,
  expectOneForm,
  optionalDim,
  rangeError,
  typeError,
} from '../validate.js';
import { typedArrayKind, viewOf } from '../validate-buffer.js';
import { expectWeight, expectWeightBias, expectWeightDtype } from '../validate-weight.js';
import { SETTING_KEYS, loadLayerSettings, type LayerSettings } from './settings.js';

const CONFIG_KEYS = new Set([
  'embedDim', 'numHeads', 'numKvHeads', 'headDim', 'bias', 'weights', 'weightLayout', 'weightDtype', ...SETTING_KEYS,
]);
const SEPARATE_KEYS = new Set(['wq', 'wk', 'wv', 'wo', 'bq', 'bk', 'bv', 'bo']);
const PYTORCH_KEYS = new Set(['inProjWeight', 'inProjBias', 'outProjWeight', 'outProjBias']);
const ALL_WEIGHT_KEYS = new Set([...SEPARATE_KEYS, ...PYTORCH_KEYS]);

/** One packed projection y[M, N] = x[M, K]·B + bias. */
export interface Projection {
  N: number;
  K: number;
  packed: PackedWeight;
  /** A private float32 copy, or null (zero). */
  bias: Float32Array | null;
}

export interface MhaParams {
  E: number;
  H: number;
  Hkv: number;
  Dh: number;
  bias: boolean;
  weightLayout: WeightLayout;
  weightDtype: WeightDtype;
  q: Projection;
  k: Projection;
  v: Projection;
  o: Projection;
  /** rope, qkNorm, scale, softcap, window, sinks, alibi (settings.ts). */
  s: LayerSettings;
}

/** A projection's weight and bias in the caller's layout, validated, not yet packed. */
interface RawProjection {
  N: number;
  K: number;
  w: WeightArray;
  b: WeightArray | null;
}

/** Elements [offset, offset + length) of a weight as a view over the same memory (intrinsic getters). */
function partOfWeight(v: WeightArray, offset: number, length: number): WeightArray {
  const { buffer, byteOffset } = viewOf(v);
  return typedArrayKind(v) === 'Float32Array'
    ? new Float32Array(buffer, byteOffset + 4 * offset, length)
    : new Uint16Array(buffer, byteOffset + 2 * offset, length);
}

export function loadMhaParams(backend: Backend, config: unknown): MhaParams {
  const c = expectOptions('config', config, CONFIG_KEYS) as Partial<MultiHeadAttentionConfig> & Record<string, unknown>;
  const E = expectDim('config.embedDim', c.embedDim);
  const H = expectDim('config.numHeads', c.numHeads);
  const Hkv = optionalDim('config.numKvHeads', c.numKvHeads, H);
  if (H % Hkv !== 0) throw rangeError('config.numKvHeads', `a divisor of numHeads = ${H}`, Hkv);
  if (c.headDim === undefined && E % H !== 0) {
    throw rangeError('config.numHeads', `a divisor of embedDim = ${E} (or give config.headDim)`, H);
  }
  const Dh = optionalDim('config.headDim', c.headDim, E / H);
  const weightLayout = c.weightLayout === undefined ? 'out-in' : expectChoice('config.weightLayout', c.weightLayout, WEIGHT_LAYOUTS);
  const bias = c.bias === undefined ? true : expectBoolean('config.bias', c.bias);
  const dtype = expectWeightDtype('config.weightDtype', c.weightDtype);
  const w = expectOptions('config.weights', c.weights, ALL_WEIGHT_KEYS);
  const outIn = weightLayout === 'out-in';

  expectOneForm('config.weights', w, { keys: SEPARATE_KEYS, label: '{ wq, wk, wv, wo, bq?, bk?, bv?, bo? }' },
    { keys: PYTORCH_KEYS, label: "PyTorch's { inProjWeight, inProjBias?, outProjWeight, outProjBias? }" });
  const settings = loadLayerSettings(c, H, Hkv, Dh);
  const pytorch = Object.keys(w).some((key) => PYTORCH_KEYS.has(key));
  const raw = pytorch
    ? pytorchForm(w, E, H, Hkv, Dh, outIn, bias, dtype)
    : separateForm(w, E, H, Hkv, Dh, outIn, bias, dtype);

  // Everything is valid: copy and pack.
  const pack = (r: RawProjection): Projection => ({
    N: r.N,
    K: r.K,
    packed: backend.packWeight(r.w, outIn, r.N, r.K, dtype),
    bias: r.b ? privateFloatBias(r.b, dtype) : null,
  });
  return {
    E, H, Hkv, Dh, bias, weightLayout, weightDtype: dtype, q: pack(raw.q), k: pack(raw.k), v: pack(raw.v), o: pack(raw.o),
    s: settings,
  };
}

/** Weight dims in the caller's layout, named for the length message (e.g. `H*Dh*E = 12*64*768`). */
function weightDims(outIn: boolean, out: Record<string, number>, inn: Record<string, number>): Record<string, number> {
  return outIn ? { ...out, ...inn } : { ...inn, ...out };
}

function optionalBias(
  name: string, v: unknown, hasBias: boolean, dtype: WeightDtype, dims: Record<string, number>,
): WeightArray | null {
  if (v === undefined) return null;
  if (!hasBias) throw typeError(name, 'no bias (config.bias is false)', v);
  return expectWeightBias(name, v, dtype, dims);
}

function separateForm(
  w: Record<string, unknown>, E: number, H: number, Hkv: number, Dh: number, outIn: boolean, hasBias: boolean,
  dtype: WeightDtype,
): Record<'q' | 'k' | 'v' | 'o', RawProjection> {
  const n = 'config.weights.';
  const qDims = weightDims(outIn, { H, Dh }, { E });
  const kvDims = weightDims(outIn, { Hkv, Dh }, { E });
  const oDims = weightDims(outIn, { E }, { H, Dh });
  const wq = expectWeight(`${n}wq`, w.wq, dtype, qDims);
  const wk = expectWeight(`${n}wk`, w.wk, dtype, kvDims);
  const wv = expectWeight(`${n}wv`, w.wv, dtype, kvDims);
  const wo = expectWeight(`${n}wo`, w.wo, dtype, oDims);
  const bq = optionalBias(`${n}bq`, w.bq, hasBias, dtype, { H, Dh });
  const bk = optionalBias(`${n}bk`, w.bk, hasBias, dtype, { Hkv, Dh });
  const bv = optionalBias(`${n}bv`, w.bv, hasBias, dtype, { Hkv, Dh });
  const bo = optionalBias(`${n}bo`, w.bo, hasBias, dtype, { E });
  return {
    q: { N: H * Dh, K: E, w: wq, b: bq },
    k: { N: Hkv * Dh, K: E, w: wk, b: bk },
    v: { N: Hkv * Dh, K: E, w: wv, b: bv },
    o: { N: E, K: H * Dh, w: wo, b: bo },
  };
}

function pytorchForm(
  w: Record<string, unknown>, E: number, H: number, Hkv: number, Dh: number, outIn: boolean, hasBias: boolean,
  dtype: WeightDtype,
): Record<'q' | 'k' | 'v' | 'o', RawProjection> {
  const n = 'config.weights.';
  if (Hkv !== H) {
    throw rangeError('config.numKvHeads', `numHeads = ${H} with inProjWeight (PyTorch nn.MultiheadAttention form)`, Hkv);
  }
  if (H * Dh !== E) {
    throw rangeError('config.headDim', `embedDim / numHeads = ${E}/${H} with inProjWeight (PyTorch form needs H*Dh = E)`, Dh);
  }
  const inW = expectWeight(`${n}inProjWeight`, w.inProjWeight, dtype, outIn ? { '3E': 3 * E, E } : { E, '3E': 3 * E });
  const outW = expectWeight(`${n}outProjWeight`, w.outProjWeight, dtype, { E, 'H*Dh': E });
  const inB = optionalBias(`${n}inProjBias`, w.inProjBias, hasBias, dtype, { '3E': 3 * E });
  const outB = optionalBias(`${n}outProjBias`, w.outProjBias, hasBias, dtype, { E });
  // Part p (0 q, 1 k, 2 v) of the fused weight, as its own [E, E] matrix in the same layout and dtype.
  const part = (p: number): WeightArray => {
    if (outIn) return partOfWeight(inW, p * E * E, E * E);  // rows [pE, pE + E) of [3E, E]
    // columns [pE, pE + E) of [E, 3E]
    if (typedArrayKind(inW) === 'Float32Array') {
      const m = new Float32Array(E * E);
      for (let r = 0; r < E; r++) m.set(partOfWeight(inW, r * 3 * E + p * E, E) as Float32Array, r * E);
      return m;
    }
    const m = new Uint16Array(E * E);
    for (let r = 0; r < E; r++) m.set(partOfWeight(inW, r * 3 * E + p * E, E) as Uint16Array, r * E);
    return m;
  };
  const biasPart = (p: number) => (inB ? partOfWeight(inB, p * E, E) : null);
  return {
    q: { N: E, K: E, w: part(0), b: biasPart(0) },
    k: { N: E, K: E, w: part(1), b: biasPart(1) },
    v: { N: E, K: E, w: part(2), b: biasPart(2) },
    o: { N: E, K: E, w: outW, b: outB },
  };
}
