// SPDX-License-Identifier: MIT
//
// The test oracle: scaled dot-product attention in float64, written for clarity and independently
// of lib/ (it shares no code with it). It takes the PUBLIC arguments of DESIGN.md's
// scaledDotProductAttention, resolves the defaults and the causal alignment itself, builds the full
// score matrix of each (b, h), and runs a 3-pass softmax (max, sum of exp, normalize).
// Also the linear map y = x·B + bias in float64, and the float16 nearest a number. (Seeded random
// data and allclose: test/helpers.ts.)

export type Causal = boolean | 'bottom-right' | 'top-left';

export interface RefOptions {
  batch?: number;
  heads: number;
  kvHeads?: number;
  seqQ: number;
  seqK?: number;
  headDim: number;
  valueDim?: number;
  layout?: 'bhsd' | 'bshd';
  scale?: number;
  softcap?: number;
  causal?: Causal;
  queryOffset?: number | Int32Array;
  mask?: { data: Float32Array | Uint8Array; dims: number[] };
  kvLengths?: Int32Array;
  window?: { left?: number; right?: number };
  sinks?: Float32Array;
  alibi?: Float32Array;
  // Output options of the public API are accepted (and ignored) so a case's options can be passed as is.
  out?: unknown;
  weights?: unknown;
  scores?: unknown;
  lse?: unknown;
}

export interface RefResult {
  /** Same layout as q (with Dv instead of D). */
  out: Float64Array;
  /** [B, H, Sq, Sk] probabilities. */
  weights: Float64Array;
  /** [B, H, Sq, Sk] what enters the softmax; -Infinity where blocked. */
  scores: Float64Array;
  /** [B, H, Sq] log(e^sink + Σ_visible e^score) per row; -Infinity with nothing visible and no sink. */
  lse: Float64Array;
}

export function referenceSdpa(q: Float32Array, k: Float32Array, v: Float32Array, opts: RefOptions): RefResult {
  const B = opts.batch ?? 1;
  const H = opts.heads;
  const Hkv = opts.kvHeads ?? H;
  const Sq = opts.seqQ;
  const Sk = opts.seqK ?? Sq;
  const D = opts.headDim;
  const Dv = opts.valueDim ?? D;
  const layout = opts.layout ?? 'bhsd';
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const softcap = opts.softcap ?? 0;
  const G = H / Hkv;

  // Element index of [b, head, pos, x] in a tensor with `heads` heads, `seq` rows and `width` columns.
  const at = (heads: number, seq: number, width: number, b: number, head: number, pos: number, x: number): number =>
    layout === 'bhsd'
      ? ((b * heads + head) * seq + pos) * width + x
      : ((b * seq + pos) * heads + head) * width + x;

  // Positions (DESIGN.md "Positions and score modifiers"): query row i of batch b sits at
  // position(b) + i, key j at j. queryOffset sets it and means causal; otherwise causal aligns it
  // (top-left: 0; true / bottom-right: the last row on the last valid key), and a call that is not
  // causal puts the last row on the last key.
  const validKeys = (b: number): number => (opts.kvLengths ? opts.kvLengths[b]! : Sk);
  const c = opts.causal ?? false;
  const isCausal = opts.queryOffset !== undefined || c !== false;
  const position = (b: number): number => {
    if (opts.queryOffset !== undefined) {
      return typeof opts.queryOffset === 'number' ? opts.queryOffset : opts.queryOffset[b]!;
    }
    if (c === false) return Sk - Sq;
    if (c === 'top-left') return 0;
    return validKeys(b) - Sq; // true or 'bottom-right'
  };
  const left = opts.window?.left ?? Infinity;
  const right = opts.window?.right ?? Infinity;

  // Mask lookup with NumPy broadcasting: dims right-aligned against [B, H, Sq, Sk], a dim of 1
  // repeats. Strides of the mask as stored, 0 where it is broadcast.
  const mask = opts.mask;
  const mdims = mask ? [...Array(4 - mask.dims.length).fill(1), ...mask.dims] as number[] : [1, 1, 1, 1];
  const mstrides = [0, 0, 0, 0];
  for (let a = 3, st = 1; a >= 0; a--) {
    mstrides[a] = mdims[a] === 1 ? 0 : st;
    st *= mdims[a]!;
  }
  const maskAt = (b: number, h: number, i: number, j: number): number | null =>
    mask ? mask.data[b * mstrides[0]! + h * mstrides[1]! + i * mstrides[2]! + j * mstrides[3]!]! : null;

  const out = new Float64Array(B * H * Sq * Dv);
  const weights = new Float64Array(B * H * Sq * Sk);
  const scores = new Float64Array(B * H * Sq * Sk);
  const lse = new Float64Array(B * H * Sq);

  for (let b = 0; b < B; b++) {
    const L = validKeys(b);
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / G);
      const sink = opts.sinks ? opts.sinks[h]! : -Infinity;
      for (let i = 0; i < Sq; i++) {
        const row = ((b * H + h) * Sq + i) * Sk;
        const p = position(b) + i;

        // Pass 0: the scores row.
        for (let j = 0; j < Sk; j++) {
          let blocked = j >= L || (isCausal && j > p) || j < p - left || j > p + right;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[at(H, Sq, D, b, h, i, d)]! * k[at(Hkv, Sk, D, b, hk, j, d)]!;
          s *= scale;
          if (softcap > 0) s = softcap * Math.tanh(s / softcap);
          if (opts.alibi) s -= opts.alibi[h]! * Math.abs(p - j);
          const mv = maskAt(b, h, i, j);
          if (mv !== null) {
            if (mask!.data instanceof Uint8Array) {
              if (mv === 0) blocked = true;
            } else if (mv === -Infinity) {
              blocked = true;
            } else {
              s += mv;
            }
          }
          scores[row + j] = blocked ? -Infinity : s;
        }

        // Pass 1: max. Pass 2: sum of exp. Pass 3: normalize. The sink is one more term of the
        // sum that has no value row (its weight is not returned).
        let max = sink;
        for (let j = 0; j < Sk; j++) max = Math.max(max, scores[row + j]!);
        if (max === -Infinity) { // every key blocked and no sink: zeros in weights and out
          lse[(b * H + h) * Sq + i] = -Infinity;
          continue;
        }
        let sum = Math.exp(sink - max);
        for (let j = 0; j < Sk; j++) sum += Math.exp(scores[row + j]! - max);
        lse[(b * H + h) * Sq + i] = max + Math.log(sum);
        for (let j = 0; j < Sk; j++) weights[row + j] = Math.exp(scores[row + j]! - max) / sum;

        // out = weights . V
        for (let x = 0; x < Dv; x++) {
          let o = 0;
          for (let j = 0; j < Sk; j++) {
            const w = weights[row + j]!;
            if (w !== 0) o += w * v[at(Hkv, Sk, Dv, b, hk, j, x)]!;
          }
          out[at(H, Sq, Dv, b, h, i, x)] = o;
        }
      }
    }
  }
  return { out, weights, scores, lse };
}

// ---------------------------------------------------------------------------------------------
// Linear map

/**
 * y[M, N] = x[M, K] · B + bias in float64, B = Wᵀ for 'out-in' (W [N, K]) or W for 'in-out'
 * (W [K, N]). Also returns Σ|terms| per element, the scale a float32 rounding bound is relative to.
 */
export function referenceLinear(
  x: Float32Array, w: Float32Array, bias: Float32Array | null | undefined, M: number, N: number, K: number, outIn: boolean,
): { ref: Float64Array; mag: Float64Array } {
  const ref = new Float64Array(M * N);
  const mag = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = bias ? bias[j]! : 0;
      let a = Math.abs(s);
      for (let k = 0; k < K; k++) {
        const p = x[i * K + k]! * (outIn ? w[j * K + k]! : w[k * N + j]!);
        s += p;
        a += Math.abs(p);
      }
      ref[i * N + j] = s;
      mag[i * N + j] = a;
    }
  }
  return { ref, mag };
}

// ---------------------------------------------------------------------------------------------
// float16

/** The value of the half nearest x by the definition (round half to even), computed in doubles. */
export function referenceHalf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a === 0 || a === Infinity) return x;
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  let ulp = 2 ** (e - 10);
  if (a / ulp >= 2048) ulp *= 2;  // log2 rounded down at a power of two
  const q = a / ulp;              // exact: a has 24 significant bits
  let r = Math.floor(q);
  const f = q - r;
  if (f > 0.5 || (f === 0.5 && r % 2 === 1)) r += 1;
  const y = r * ulp;
  return Math.sign(x) * (y > 65504 ? Infinity : y);
}
