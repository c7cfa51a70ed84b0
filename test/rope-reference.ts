// Slow float64 references for rotary embeddings, written from the formulas (Hugging Face's
// modeling_rope_utils.py rope init functions and the rotation of DESIGN.md), sharing no code with
// lib/rope.ts or lib/kernels/rope.ts.
import type { RopeSettings } from '../lib/index.js';

export interface RefFrequencies {
  invFreq: Float64Array;
  attentionFactor: number;
  rotaryDim: number;
}

/** inv_freq and the attention factor for heads of headDim values, as Hugging Face computes them. */
export function referenceFrequencies(headDim: number, rope: RopeSettings = {}): RefFrequencies {
  const dim = rope.rotaryDim ?? headDim;
  if (rope.invFreq) return { invFreq: Float64Array.from(rope.invFreq), attentionFactor: rope.attentionFactor ?? 1, rotaryDim: dim };
  const theta = rope.theta ?? 10000;
  // _compute_default_rope_parameters: 1 / base^(arange(0, dim, 2) / dim)
  const f = Float64Array.from({ length: dim / 2 }, (_, i) => 1 / Math.pow(theta, (2 * i) / dim));
  const s = rope.scaling;
  let factor = 1;
  if (s?.type === 'linear') {
    for (let i = 0; i < f.length; i++) f[i] = f[i]! / s.factor;
  } else if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < f.length; i++) {
      const wavelen = (2 * Math.PI) / f[i]!;
      const scaled = wavelen > lowWavelen ? f[i]! / s.factor : f[i]!;
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      const smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
      const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
      f[i] = medium ? smoothed : scaled;
    }
  } else if (s?.type === 'yarn') {
    const findDim = (rot: number) => (dim * Math.log(s.originalMaxPositions / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
    let low = findDim(s.betaFast ?? 32);
    let high = findDim(s.betaSlow ?? 1);
    if (s.truncate ?? true) {
      low = Math.floor(low);
      high = Math.ceil(high);
    }
    low = Math.max(low, 0);
    high = Math.min(high, dim - 1);
    if (low === high) high += 0.001;
    for (let i = 0; i < f.length; i++) {
      const ramp = Math.min(Math.max((i - low) / (high - low), 0), 1);
      const extrapolationFactor = 1 - ramp;
      const interpolation = 1 / (s.factor * Math.pow(theta, (2 * i) / dim));
      const extrapolation = 1 / Math.pow(theta, (2 * i) / dim);
      f[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
    }
    factor = s.factor <= 1 ? 1 : 0.1 * Math.log(s.factor) + 1;
  }
  return { invFreq: f, attentionFactor: rope.attentionFactor ?? factor, rotaryDim: dim };
}

/**
 * x rotated in float64: [B, H, S, D] ('bhsd') or [B, S, H, D] ('bshd'), positions [B·S].
 */
export function referenceRope(
  x: Float32Array, B: number, H: number, S: number, D: number, layout: 'bhsd' | 'bshd', positions: ArrayLike<number>,
  rope: RopeSettings = {},
): Float64Array {
  const fr = referenceFrequencies(D, rope);
  const half = fr.invFreq.length;
  const y = Float64Array.from(x);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let s = 0; s < S; s++) {
        const at = layout === 'bhsd' ? ((b * H + h) * S + s) * D : ((b * S + s) * H + h) * D;
        const pos = positions[b * S + s]!;
        for (let t = 0; t < half; t++) {
          const angle = pos * fr.invFreq[t]!;
          const c = Math.cos(angle) * fr.attentionFactor, sn = Math.sin(angle) * fr.attentionFactor;
          const i1 = rope.style === 'interleaved' ? at + 2 * t : at + t;
          const i2 = rope.style === 'interleaved' ? i1 + 1 : i1 + half;
          const x1 = x[i1]!, x2 = x[i2]!;
          y[i1] = x1 * c - x2 * sn;
          y[i2] = x2 * c + x1 * sn;
        }
      }
    }
  }
  return y;
}
