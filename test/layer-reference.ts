// A slow float64 reference of a whole attention block with today's decoder settings, written from
// the formulas of DESIGN.md ("The layer with these settings"), sharing no code with lib/:
//   q = x·Wqᵀ + bq, k = x·Wkᵀ + bk, v = x·Wvᵀ + bv     ('out-in' weights)
//   q, k ← RMSNorm (per head or over the whole vector), then RoPE at the given positions
//   s = scale·q·k; softcap; − slope·|i − j|; causal / window / kvLengths blocks; softmax with sinks
//   y = a·Woᵀ + bo; rows i ≥ seqLens[b] are 0.
// Masks, windows and ALiBi follow the row index (row i at i: self-attention without a cache);
// positions steer the rotation only. The rotary frequencies come in as numbers (test/rope-reference.ts
// computes them from the formulas).

export interface RefNorm {
  weight: ArrayLike<number>;
  span: 'head' | 'all';
  eps: number;
  offset: number;
}

export interface RefRope {
  invFreq: ArrayLike<number>;
  interleaved: boolean;
  attentionFactor: number;
}

export interface RefBlock {
  E: number;
  H: number;
  Hkv: number;
  Dh: number;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  bo?: Float32Array;
  qNorm?: RefNorm;
  kNorm?: RefNorm;
  rope?: RefRope;
  scale?: number;
  softcap?: number;
  window?: { left?: number; right?: number };
  sinks?: Float32Array;
  alibi?: ArrayLike<number>;
}

export interface RefCall {
  B: number;
  S: number;
  causal: boolean;
  /** [B·S] rotary positions; default row i at i. */
  positions?: Int32Array;
  kvLengths?: Int32Array;
  seqLens?: Int32Array;
}

/** y[r, o] = Σ_i x[r, i]·w[o, i] + b[o], in float64. */
function project(x: ArrayLike<number>, rows: number, inDim: number, w: Float32Array, b: Float32Array | undefined, outDim: number): Float64Array {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let acc = b ? b[o]! : 0;
      for (let i = 0; i < inDim; i++) acc += x[r * inDim + i]! * w[o * inDim + i]!;
      y[r * outDim + o] = acc;
    }
  }
  return y;
}

/** RMSNorm in place over each token's vector ([rows, heads·Dh]): per head or over all of it. */
function rmsNorm(y: Float64Array, rows: number, heads: number, Dh: number, n: RefNorm): void {
  const span = n.span === 'head' ? Dh : heads * Dh;
  for (let start = 0; start < rows * heads * Dh; start += span) {
    let ss = 0;
    for (let d = 0; d < span; d++) ss += y[start + d]! ** 2;
    const inv = 1 / Math.sqrt(ss / span + n.eps);
    for (let d = 0; d < span; d++) y[start + d] = y[start + d]! * inv * (n.offset + n.weight[d]!);
  }
}

/** RoPE in place on [B·S, heads, Dh] rows at `positions` [B·S]. */
export function refRotate(y: Float64Array, rows: number, heads: number, Dh: number, rope: RefRope, positions: ArrayLike<number>): void {
  const half = rope.invFreq.length;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < heads; h++) {
      const base = (r * heads + h) * Dh;
      for (let t = 0; t < half; t++) {
        const angle = positions[r]! * rope.invFreq[t]!;
        const c = Math.cos(angle) * rope.attentionFactor;
        const s = Math.sin(angle) * rope.attentionFactor;
        const i1 = rope.interleaved ? base + 2 * t : base + t;
        const i2 = rope.interleaved ? base + 2 * t + 1 : base + t + half;
        const x1 = y[i1]!, x2 = y[i2]!;
        y[i1] = x1 * c - x2 * s;
        y[i2] = x2 * c + x1 * s;
      }
    }
  }
}

/** The block's output [B, S, E] in float64. */
export function referenceBlock(m: RefBlock, x: Float32Array, call: RefCall): Float64Array {
  const { E, H, Hkv, Dh } = m;
  const { B, S } = call;
  const M = B * S;
  const q = project(x, M, E, m.wq, m.bq, H * Dh);
  const k = project(x, M, E, m.wk, m.bk, Hkv * Dh);
  const v = project(x, M, E, m.wv, m.bv, Hkv * Dh);
  if (m.qNorm) rmsNorm(q, M, H, Dh, m.qNorm);
  if (m.kNorm) rmsNorm(k, M, Hkv, Dh, m.kNorm);
  if (m.rope) {
    const positions = call.positions ?? Int32Array.from({ length: M }, (_, r) => r % S);
    refRotate(q, M, H, Dh, m.rope, positions);
    refRotate(k, M, Hkv, Dh, m.rope, positions);
  }
  const scale = m.scale ?? 1 / Math.sqrt(Dh);
  const group = H / Hkv;
  const attn = new Float64Array(M * H * Dh);
  const scores = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    const L = call.kvLengths ? call.kvLengths[b]! : S;
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < S; i++) {
        let max = m.sinks ? m.sinks[h]! : -Infinity;
        for (let j = 0; j < S; j++) {
          let visible = j < L && (!call.causal || j <= i);
          if (m.window?.left !== undefined && j < i - m.window.left) visible = false;
          if (m.window?.right !== undefined && j > i + m.window.right) visible = false;
          if (!visible) {
            scores[j] = -Infinity;
            continue;
          }
          let s = 0;
          for (let d = 0; d < Dh; d++) s += q[((b * S + i) * H + h) * Dh + d]! * k[((b * S + j) * Hkv + hk) * Dh + d]!;
          s *= scale;
          if (m.softcap) s = m.softcap * Math.tanh(s / m.softcap);
          if (m.alibi) s -= m.alibi[h]! * Math.abs(i - j);
          scores[j] = s;
          if (s > max) max = s;
        }
        let denom = m.sinks ? Math.exp(m.sinks[h]! - max) : 0;
        for (let j = 0; j < S; j++) denom += scores[j] === -Infinity ? 0 : Math.exp(scores[j]! - max);
        const out = ((b * S + i) * H + h) * Dh;
        if (max === -Infinity || denom === 0) continue; // nothing visible: zeros
        for (let j = 0; j < S; j++) {
          if (scores[j] === -Infinity) continue;
          const w = Math.exp(scores[j]! - max) / denom;
          for (let d = 0; d < Dh; d++) attn[out + d] = attn[out + d]! + w * v[((b * S + j) * Hkv + hk) * Dh + d]!;
        }
      }
    }
  }
  const y = project(attn, M, H * Dh, m.wo, m.bo, E);
  if (call.seqLens) {
    for (let b = 0; b < B; b++) y.fill(0, (b * S + call.seqLens[b]!) * E, (b + 1) * S * E);
  }
  return y;
}
