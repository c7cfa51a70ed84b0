// SPDX-License-Identifier: MIT
//
// Scaled dot-product attention, pure TypeScript: the fallback backend's kernel. Same algorithm family
// as native/attention.cc (key blocks + online softmax), written for V8 (flat typed-array indexing,
// hoisted strides, no allocation per row, no closures in the loops).
//
// Shapes: B batch, H query heads, Hkv key/value heads (G = H / Hkv), Sq query rows,
// Sk keys, D query/key head size, Dv value head size.
//   layout 'bhsd': q [B,H,Sq,D]  k [B,Hkv,Sk,D]  v [B,Hkv,Sk,Dv]  out [B,H,Sq,Dv]
//   layout 'bshd': q [B,Sq,H,D]  k [B,Sk,Hkv,D]  v [B,Sk,Hkv,Dv]  out [B,Sq,H,Dv]
//   weights / scores (optional): [B,H,Sq,Sk] in both layouts.
//   mask (optional): addressed through p.maskStrides over (b, h, i, j), stride 0 = broadcast.
//
// Math, for query row i of head h in batch b (kv head hk = floor(h / G)), at position
// p = offsets[b] + i (offsets are given when causal, a window or ALiBi needs them):
//   key_begin = window left side w_l ? max(0, p - w_l) : 0
//   key_end = min(kvLengths[b] ?? Sk, causal ? p + 1 : Sk, window right side w_r ? p + w_r + 1 : Sk),
//             clamped to [0, Sk]
//   s_j = scale * (q_bhi . k_bhkj)
//   if softcap c > 0: s_j = c * tanh(s_j / c)
//   ALiBi: s_j -= alibi[h] * |p - j|
//   float mask: s_j += mask_bhij, except mask == -Infinity blocks (whatever q.k is, NaN included)
//   bool mask:  mask_bhij == 0 blocks;  j outside [key_begin, key_end) blocks.  Blocked: s_j = -Infinity.
//   out_bhi = sum_j softmax(s)_j * v_bhkj, the softmax's denominator holding e^sinks[h] too
//   lse_bhi = log(e^sinks[h] + sum of e^s_j over the visible keys) = m + log l
// Keys are processed in blocks of BLOCK: the open (unblocked) keys of a block are listed first, so
// a blocked key costs no dot product; their scores go into a Float32Array scratch (every later use
// sees the same fp32-rounded score, as stored in `scores`), then merge into the running max m and
// denominator l, rescaling the output accumulator by alpha = exp(m_old - m_new). q.k and p.V run four
// keys per pass (one load of q[d] / acc[d] serves four keys). Dot products and accumulators are
// doubles (V8 numbers). A row with every key blocked has l == 0 and yields
// zeros in out and weights, never NaN. `weights` is a post-pass per row: w_j = exp(s_j - m) / l.
// A sink starts the row at (m, l) = (sink, 1) rather than (-Infinity, 0), and carries no value.
// The ALiBi bias joins the float mask's value in the list of open keys (both are added after the
// softcap), so it costs nothing in the dot-product loops.
// Memory: O(BLOCK + Dv) scratch per call (float16 K/V: plus O(Sk (D + Dv))), plus the optional
// [B,H,Sq,Sk] weights/scores.
//
// float16 K/V (p.kvDtype 'float16', a float16 KVCache: k and v are Uint16Arrays of binary16 bits):
// when the loop reaches a new (batch, kv head), the keys and values its rows can see are widened
// once into dense Float32Array scratch ([Sk, D] and [Sk, Dv]) through the 65536-entry table of
// lib/kernels/half.ts, and the loops below read that scratch as if it were a float32 input. So every
// element load in the hot loops stays a Float32Array load whatever the dtype, the G query heads
// of a group and all Sq rows share one widening, and the arithmetic is the same as for float32
// K/V of the decoded values. (Widening per block and row instead was several times slower:
// bench/RESULTS.md.)

import { halfTable } from './half.js';
import { stridesFor, type SdpaPlan } from '../plan.js';

const NO_F32 = new Float32Array(0);
const NO_U16 = new Uint16Array(0);

/** Keys per online-softmax block. */
const BLOCK = 256;

/** First key row i of batch b may see (the window's left side). */
function keyBegin(p: SdpaPlan, b: number, i: number): number {
  if (p.windowLeft < 0) return 0;
  const first = p.offsets![b]! + i - p.windowLeft;
  return first < 0 ? 0 : first > p.Sk ? p.Sk : first;
}

/** One past the last key row i of batch b may see (kvLengths, causal, the window's right side). */
function keyEnd(p: SdpaPlan, b: number, i: number): number {
  let end = p.kvLengths !== null ? p.kvLengths[b]! : p.Sk;
  if (p.causal && p.offsets![b]! + i + 1 < end) end = p.offsets![b]! + i + 1;
  if (p.windowRight >= 0 && p.offsets![b]! + i + p.windowRight + 1 < end) end = p.offsets![b]! + i + p.windowRight + 1;
  return end < 0 ? 0 : end > p.Sk ? p.Sk : end;
}

export function sdpaJs(p: SdpaPlan): void {
  const { q, out, B, H, Hkv, Sq, Sk, D, Dv, scale, softcap, offsets, sinks, alibi, lse } = p;
  const f16 = p.kvDtype === 'float16';
  const k16 = f16 ? (p.k as Uint16Array) : NO_U16;
  const v16 = f16 ? (p.v as Uint16Array) : NO_U16;
  const half = f16 ? halfTable() : NO_F32;
  const weights = p.weights;
  const scores = p.scores;
  const G = (H / Hkv) | 0;

  const [qsB, qsH, qsS] = stridesFor(p.layout, H, Sq, D);
  const [ksB, ksH, ksS] = stridesFor(p.layout, Hkv, Sk, D);
  const [vsB, vsH, vsS] = stridesFor(p.layout, Hkv, Sk, Dv);
  const [osB, osH, osS] = stridesFor(p.layout, H, Sq, Dv);

  const mask = p.mask;
  const hasMask = mask !== null;
  const boolMask = mask instanceof Uint8Array;
  const fmask: Float32Array = mask instanceof Float32Array ? mask : new Float32Array(0);
  const bmask: Uint8Array = mask instanceof Uint8Array ? mask : new Uint8Array(0);
  const msB = p.maskStrides[0];
  const msH = p.maskStrides[1];
  const msI = p.maskStrides[2];
  const msJ = p.maskStrides[3];
  const useCap = softcap > 0;

  // Scratch, once per call.
  const blk = Math.min(BLOCK, Math.max(Sk, 1));
  const sc = new Float32Array(blk); // scores of the block (fp32, as stored in scores/weights)
  const open = new Int32Array(blk); // keys of the block that are not blocked
  const openBias = new Float64Array(blk); // their float-mask values
  const openP = new Float64Array(blk); // their exp(s - m)
  const acc = new Float64Array(Math.max(Dv, 1)); // output accumulator
  // What the dot and p.V loops read: the inputs, or (float16) the current kv head widened, key j
  // at j * D / j * Dv.
  const k: Float32Array = f16 ? new Float32Array(Sk * D) : (p.k as Float32Array);
  const v: Float32Array = f16 ? new Float32Array(Sk * Dv) : (p.v as Float32Array);
  // A weights row doubles as storage for the row's scores when `scores` is not asked for.
  const rowScores = scores !== null ? scores : weights;

  for (let b = 0; b < B; b++) {
    const offB = offsets !== null ? offsets[b]! : 0;
    for (let h = 0; h < H; h++) {
      const sink = sinks !== null ? sinks[h]! : -Infinity;
      const slope = alibi !== null ? alibi[h]! : 0;
      const hk = (h / G) | 0;
      // Where key j of this head starts: kBase + j * kStride in k (likewise for v).
      let kBase = b * ksB + hk * ksH;
      let vBase = b * vsB + hk * vsH;
      let kStride = ksS;
      let vStride = vsS;
      if (f16) {
        if (h % G === 0) { // a new kv head: widen the keys any of its rows can see
          const n = keyEnd(p, b, Sq - 1);
          for (let j = keyBegin(p, b, 0); j < n; j++) {
            const ks = kBase + j * ksS, vs = vBase + j * vsS;
            for (let d = 0; d < D; d++) k[j * D + d] = half[k16[ks + d]!]!;
            for (let d = 0; d < Dv; d++) v[j * Dv + d] = half[v16[vs + d]!]!;
          }
        }
        kBase = vBase = 0;
        kStride = D;
        vStride = Dv;
      }
      for (let i = 0; i < Sq; i++) {
        const qo = b * qsB + h * qsH + i * qsS;
        const oo = b * osB + h * osH + i * osS;
        const mo = b * msB + h * msH + i * msI;
        const wo = ((b * H + h) * Sq + i) * Sk; // weights/scores row

        const pos = offB + i;
        const kBegin = keyBegin(p, b, i);
        const kEnd = keyEnd(p, b, i);

        let m = sink; // -Infinity without sinks (a sink of -Infinity is no sink)
        let l = sink === -Infinity ? 0 : 1;
        for (let d = 0; d < Dv; d++) acc[d] = 0;
        // Keys before the window are never visited: blocked in scores (and weights' scratch).
        if (rowScores !== null) for (let j = 0; j < kBegin; j++) rowScores[wo + j] = -Infinity;
        if (weights !== null && weights !== rowScores) for (let j = 0; j < kBegin; j++) weights[wo + j] = -Infinity;

        for (let j0 = kBegin; j0 < kEnd; j0 += BLOCK) {
          const j1 = j0 + BLOCK < kEnd ? j0 + BLOCK : kEnd;

          // 1. Which keys of the block are open; the blocked ones score -Infinity whatever q.k is.
          let n = 0;
          for (let j = j0; j < j1; j++) {
            let bias = 0;
            if (hasMask) {
              if (boolMask) {
                if (bmask[mo + j * msJ] === 0) {
                  sc[j - j0] = -Infinity;
                  continue;
                }
              } else {
                bias = fmask[mo + j * msJ]!;
                if (bias === -Infinity) {
                  sc[j - j0] = -Infinity;
                  continue;
                }
              }
            }
            open[n] = j;
            openBias[n] = slope !== 0 ? bias - slope * Math.abs(pos - j) : bias;
            n++;
          }

          // 2. Scores of the open keys, four keys per pass over q, and their max.
          let bm = -Infinity;
          let t = 0;
          for (; t + 3 < n; t += 4) {
            const ja = open[t]!;
            const jb = open[t + 1]!;
            const jc = open[t + 2]!;
            const jd = open[t + 3]!;
            const ka = kBase + ja * kStride;
            const kb = kBase + jb * kStride;
            const kc = kBase + jc * kStride;
            const kd = kBase + jd * kStride;
            let sa = 0;
            let sb = 0;
            let scC = 0;
            let sd = 0;
            for (let d = 0; d < D; d++) {
              const qd = q[qo + d]!;
              sa += qd * k[ka + d]!;
              sb += qd * k[kb + d]!;
              scC += qd * k[kc + d]!;
              sd += qd * k[kd + d]!;
            }
            sa *= scale;
            sb *= scale;
            scC *= scale;
            sd *= scale;
            if (useCap) {
              sa = softcap * Math.tanh(sa / softcap);
              sb = softcap * Math.tanh(sb / softcap);
              scC = softcap * Math.tanh(scC / softcap);
              sd = softcap * Math.tanh(sd / softcap);
            }
            sa = Math.fround(sa + openBias[t]!);
            sb = Math.fround(sb + openBias[t + 1]!);
            scC = Math.fround(scC + openBias[t + 2]!);
            sd = Math.fround(sd + openBias[t + 3]!);
            sc[ja - j0] = sa;
            sc[jb - j0] = sb;
            sc[jc - j0] = scC;
            sc[jd - j0] = sd;
            // A NaN score makes the row NaN (IEEE), not zeros.
            if (sa > bm || sa !== sa) bm = sa;
            if (sb > bm || sb !== sb) bm = sb;
            if (scC > bm || scC !== scC) bm = scC;
            if (sd > bm || sd !== sd) bm = sd;
          }
          for (; t < n; t++) { // leftovers
            const j = open[t]!;
            const kj = kBase + j * kStride;
            let s = 0;
            for (let d = 0; d < D; d++) s += q[qo + d]! * k[kj + d]!;
            s *= scale;
            if (useCap) s = softcap * Math.tanh(s / softcap);
            s = Math.fround(s + openBias[t]!);
            sc[j - j0] = s;
            if (s > bm || s !== s) bm = s;
          }
          if (rowScores !== null) {
            for (let j = j0; j < j1; j++) rowScores[wo + j] = sc[j - j0]!;
            if (weights !== null && weights !== rowScores) {
              for (let j = j0; j < j1; j++) weights[wo + j] = sc[j - j0]!;
            }
          }
          if (bm === -Infinity) continue; // the whole block is blocked: nothing to merge

          // 3. Merge the block into (m, l, acc): rescale by alpha = exp(m_old - m_new), then
          //    acc += sum_j p_j v_j with p_j = exp(s_j - m), four keys per pass over acc.
          if (bm > m) {
            if (m !== -Infinity) {
              const alpha = Math.exp(m - bm);
              l *= alpha;
              for (let d = 0; d < Dv; d++) acc[d] *= alpha;
            }
            m = bm;
          }
          for (t = 0; t < n; t++) {
            const pj = Math.exp(sc[open[t]! - j0]! - m);
            openP[t] = pj;
            l += pj;
          }
          for (t = 0; t + 3 < n; t += 4) {
            const pa = openP[t]!;
            const pb = openP[t + 1]!;
            const pc = openP[t + 2]!;
            const pd = openP[t + 3]!;
            const va = vBase + open[t]! * vStride;
            const vb = vBase + open[t + 1]! * vStride;
            const vc = vBase + open[t + 2]! * vStride;
            const vd = vBase + open[t + 3]! * vStride;
            for (let d = 0; d < Dv; d++) {
              acc[d] += pa * v[va + d]! + pb * v[vb + d]! + pc * v[vc + d]! + pd * v[vd + d]!;
            }
          }
          for (; t < n; t++) { // leftovers
            const pj = openP[t]!;
            const vj = vBase + open[t]! * vStride;
            for (let d = 0; d < Dv; d++) acc[d] += pj * v[vj + d]!;
          }
        }

        // 4. out = acc / l (zeros for a fully blocked row); lse = m + log l.
        const inv = l > 0 ? 1 / l : 0;
        for (let d = 0; d < Dv; d++) out[oo + d] = acc[d]! * inv;
        if (lse !== null) lse[(b * H + h) * Sq + i] = m + Math.log(l);

        // 5. Keys past key_end; weights from the final (m, l).
        if (scores !== null) for (let j = kEnd; j < Sk; j++) scores[wo + j] = -Infinity;
        if (weights !== null) {
          if (l > 0) {
            for (let j = 0; j < kEnd; j++) {
              const s = weights[wo + j]!;
              weights[wo + j] = s === -Infinity ? 0 : Math.exp(s - m) * inv;
            }
            for (let j = kEnd; j < Sk; j++) weights[wo + j] = 0;
          } else {
            for (let j = 0; j < Sk; j++) weights[wo + j] = 0;
          }
        }
      }
    }
  }
}
