// The TypeScript kernel of a RopePlan (lib/plan.ts): per token, RMSNorm of each head (or of the
// whole vector), then the rotation of the first rotaryDim values of each head. The same steps as
// native/rope.cc: angles in float64, cos and sin (times attentionFactor) rounded to float32 once
// per token and shared by its heads. The arithmetic differs in rounding only: here the norm's sum
// of squares and the products are float64, there float32 (SIMD), so the backends agree to float32
// rounding, not bit for bit.
import type { RopePlan } from '../plan.js';

export function ropeJs(p: RopePlan): void {
  const { x, out, B, S, H, D, strides, positions, invFreq, norm } = p;
  const [sb, ss, sh] = strides;
  const half = positions ? invFreq.length : 0;
  const cos = new Float32Array(half);
  const sin = new Float32Array(half);
  const all = norm !== null && p.normSpan === 'all';
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const token = b * sb + s * ss;
      if (positions) {
        const pos = positions[b * S + s]!;
        for (let t = 0; t < half; t++) {
          const angle = pos * invFreq[t]!;
          cos[t] = Math.cos(angle) * p.attentionFactor;
          sin[t] = Math.sin(angle) * p.attentionFactor;
        }
      }
      // 'all': one inverse RMS over the token's H·D values (adjacent: sh = D).
      let tokenInv = 0;
      if (all) {
        let sum = 0;
        for (let i = 0; i < H * D; i++) sum += x[token + i]! * x[token + i]!;
        tokenInv = 1 / Math.sqrt(sum / (H * D) + p.normEps);
      }
      for (let h = 0; h < H; h++) {
        const at = token + h * sh;
        if (norm) {
          let inv = tokenInv;
          if (!all) {
            let sum = 0;
            for (let d = 0; d < D; d++) sum += x[at + d]! * x[at + d]!;
            inv = 1 / Math.sqrt(sum / D + p.normEps);
          }
          const w0 = all ? h * D : 0;
          for (let d = 0; d < D; d++) out[at + d] = x[at + d]! * inv * (p.normOffset + norm[w0 + d]!);
        } else if (out !== x) {
          for (let d = 0; d < D; d++) out[at + d] = x[at + d]!;
        }
        if (half > 0) rotate(out, at, half, p.interleaved, cos, sin);
      }
    }
  }
}

/** Rotates the pairs of one head in place: (t, t + half) or (2t, 2t + 1). */
function rotate(y: Float32Array, at: number, half: number, interleaved: boolean, cos: Float32Array, sin: Float32Array): void {
  for (let t = 0; t < half; t++) {
    const i1 = interleaved ? at + 2 * t : at + t;
    const i2 = interleaved ? i1 + 1 : i1 + half;
    const x1 = y[i1]!, x2 = y[i2]!;
    y[i1] = x1 * cos[t]! - x2 * sin[t]!;
    y[i2] = x2 * cos[t]! + x1 * sin[t]!;
  }
}
