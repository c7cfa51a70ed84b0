// MultiHeadAttention's constructor arguments: validated once, then every projection copied and
// packed into the backend's panel format. E embedDim, H numHeads, Hkv numKvHeads, Dh headDim.
//   'out-in': wq [H·Dh, E], wk wv [Hkv·Dh, E], wo [E, H·Dh]   (y = x·Wᵀ + b)
//   'in-out': wq [E, H·Dh], wk wv [E, Hkv·Dh], wo [H·Dh, E]   (y = x·W + b)
//   PyTorch form: inProjWeight [3E, E] ('out-in') or [E, 3E] ('in-out'), inProjBias [3E],
//                 outProjWeight [E, E], outProjBias [E]; needs Hkv = H and H·Dh = E.
// Each projection is packed on its own: the layer runs Q, K and V as three GEMMs into three dense
// 'bshd' buffers (see forward.ts for why not one fused GEMM).
import type { Backend } from '../backend/types.js';
import { WEIGHT_LAYOUTS } from '../linear.js';
import type { MultiHeadAttentionConfig, WeightLayout } from '../types.js';
import {
  expectBoolean,
  expectChoice,
  expectDim,
  expectF32,
  expectOptions,
  expectOneForm,
  optionalDim,
  rangeError,
  typeError,
} from '../validate.js';
import { copyF32, partOf } from '../validate-buffer.js';

const CONFIG_KEYS = new Set(['embedDim', 'numHeads', 'numKvHeads', 'headDim', 'bias', 'weights', 'weightLayout']);
const SEPARATE_KEYS = new Set(['wq', 'wk', 'wv', 'wo', 'bq', 'bk', 'bv', 'bo']);
const PYTORCH_KEYS = new Set(['inProjWeight', 'inProjBias', 'outProjWeight', 'outProjBias']);
const ALL_WEIGHT_KEYS = new Set([...SEPARATE_KEYS, ...PYTORCH_KEYS]);

/** One packed projection y[M, N] = x[M, K]·B + bias. */
export interface Projection {
  N: number;
  K: number;
  packed: Float32Array;
  /** A private copy, or null (zero). */
  bias: Float32Array | null;
}

export interface MhaParams {
  E: number;
  H: number;
  Hkv: number;
  Dh: number;
  bias: boolean;
  weightLayout: WeightLayout;
  q: Projection;
  k: Projection;
  v: Projection;
  o: Projection;
}

/** A projection's weight and bias in the caller's layout, validated, not yet packed. */
interface RawProjection {
  N: number;
  K: number;
  w: Float32Array;
  b: Float32Array | null;
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
  const w = expectOptions('config.weights', c.weights, ALL_WEIGHT_KEYS);
  const outIn = weightLayout === 'out-in';

  expectOneForm('config.weights', w, { keys: SEPARATE_KEYS, label: '{ wq, wk, wv, wo, bq?, bk?, bv?, bo? }' },
    { keys: PYTORCH_KEYS, label: "PyTorch's { inProjWeight, inProjBias?, outProjWeight, outProjBias? }" });
  const pytorch = Object.keys(w).some((key) => PYTORCH_KEYS.has(key));
  const raw = pytorch ? pytorchForm(w, E, H, Hkv, Dh, outIn, bias) : separateForm(w, E, H, Hkv, Dh, outIn, bias);

  // Everything is valid: copy and pack.
  const pack = (r: RawProjection): Projection => ({
    N: r.N,
    K: r.K,
    packed: backend.packWeight(r.w, outIn, r.N, r.K),
    bias: r.b ? copyF32(r.b) : null,
  });
  return { E, H, Hkv, Dh, bias, weightLayout, q: pack(raw.q), k: pack(raw.k), v: pack(raw.v), o: pack(raw.o) };
}

/** Weight dims in the caller's layout, named for the length message (e.g. `H*Dh*E = 12*64*768`). */
function weightDims(outIn: boolean, out: Record<string, number>, inn: Record<string, number>): Record<string, number> {
  return outIn ? { ...out, ...inn } : { ...inn, ...out };
}

function optionalBias(name: string, v: unknown, hasBias: boolean, dims: Record<string, number>): Float32Array | null {
  if (v === undefined) return null;
  if (!hasBias) throw typeError(name, 'no bias (config.bias is false)', v);
  return expectF32(name, v, dims);
}

function separateForm(
  w: Record<string, unknown>, E: number, H: number, Hkv: number, Dh: number, outIn: boolean, hasBias: boolean,
): Record<'q' | 'k' | 'v' | 'o', RawProjection> {
  const n = 'config.weights.';
  const qDims = weightDims(outIn, { H, Dh }, { E });
  const kvDims = weightDims(outIn, { Hkv, Dh }, { E });
  const oDims = weightDims(outIn, { E }, { H, Dh });
  const wq = expectF32(`${n}wq`, w.wq, qDims);
  const wk = expectF32(`${n}wk`, w.wk, kvDims);
  const wv = expectF32(`${n}wv`, w.wv, kvDims);
  const wo = expectF32(`${n}wo`, w.wo, oDims);
  const bq = optionalBias(`${n}bq`, w.bq, hasBias, { H, Dh });
  const bk = optionalBias(`${n}bk`, w.bk, hasBias, { Hkv, Dh });
  const bv = optionalBias(`${n}bv`, w.bv, hasBias, { Hkv, Dh });
  const bo = optionalBias(`${n}bo`, w.bo, hasBias, { E });
  return {
    q: { N: H * Dh, K: E, w: wq, b: bq },
    k: { N: Hkv * Dh, K: E, w: wk, b: bk },
    v: { N: Hkv * Dh, K: E, w: wv, b: bv },
    o: { N: E, K: H * Dh, w: wo, b: bo },
  };
}

function pytorchForm(
  w: Record<string, unknown>, E: number, H: number, Hkv: number, Dh: number, outIn: boolean, hasBias: boolean,
): Record<'q' | 'k' | 'v' | 'o', RawProjection> {
  const n = 'config.weights.';
  if (Hkv !== H) {
    throw rangeError('config.numKvHeads', `numHeads = ${H} with inProjWeight (PyTorch nn.MultiheadAttention form)`, Hkv);
  }
  if (H * Dh !== E) {
    throw rangeError('config.headDim', `embedDim / numHeads = ${E}/${H} with inProjWeight (PyTorch form needs H*Dh = E)`, Dh);
  }
  const inW = expectF32(`${n}inProjWeight`, w.inProjWeight, outIn ? { '3E': 3 * E, E } : { E, '3E': 3 * E });
  const outW = expectF32(`${n}outProjWeight`, w.outProjWeight, { E, 'H*Dh': E });
  const inB = optionalBias(`${n}inProjBias`, w.inProjBias, hasBias, { '3E': 3 * E });
  const outB = optionalBias(`${n}outProjBias`, w.outProjBias, hasBias, { E });
  // Part p (0 q, 1 k, 2 v) of the fused weight, as its own [E, E] matrix in the same layout.
  const part = (p: number): Float32Array => {
    if (outIn) return partOf(inW, p * E * E, E * E);  // rows [pE, pE + E) of [3E, E]
    const m = new Float32Array(E * E);  // columns [pE, pE + E) of [E, 3E]
    for (let r = 0; r < E; r++) m.set(partOf(inW, r * 3 * E + p * E, E), r * E);
    return m;
  };
  const biasPart = (p: number) => (inB ? partOf(inB, p * E, E) : null);
  return {
    q: { N: E, K: E, w: part(0), b: biasPart(0) },
    k: { N: E, K: E, w: part(1), b: biasPart(1) },
    v: { N: E, K: E, w: part(2), b: biasPart(2) },
    o: { N: E, K: E, w: outW, b: outB },
  };
}
