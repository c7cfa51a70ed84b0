// Rotary position embeddings (RoPE): the frequencies a model's settings resolve to, and the
// applyRotaryEmbedding call (validated into a RopePlan for either backend). The frequencies follow
// the formulas of Hugging Face's rope init functions (modeling_rope_utils.py: default, 'linear',
// 'llama3', 'yarn'), evaluated in float64 (Hugging Face evaluates them in float32, so its values
// differ from these by float32 rounding); a layer computes them once, at construction.
import type { RopePlan } from './plan.js';
import { stridesFor } from './plan.js';
import type { RotaryEmbeddingAsyncOptions, RotaryFrequencies } from './types.js';
import { expectChoice, expectDim, expectF32, expectOptions, optionalDim } from './validate.js';
import { rowsOf } from './validate-tensor.js';
import { allocateF32, expectNoOverlap } from './validate-buffer.js';
import { expectFixedLength, expectSignal } from './validate-async.js';
import { expectPositions, expectRope, type CheckedRope } from './validate-rope.js';

const LAYOUTS = ['bhsd', 'bshd'] as const;
const OPTIONS = new Set(['batch', 'heads', 'seqLen', 'headDim', 'layout', 'out', 'positions', 'rope']);
const ASYNC_OPTIONS = new Set([...OPTIONS, 'signal']);

/**
 * The frequencies f_t (t < rotaryDim/2) and attention factor that rotary settings resolve to, for
 * heads of headDim values, by the formulas of Hugging Face's `rope_init_fn` of that `rope_type`
 * (evaluated in float64; Hugging Face's float32 values differ by their rounding). `rope` is validated as the `rope` option of applyRotaryEmbedding.
 * @example
 * rotaryFrequencies(128, { theta: 500000, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } });
 */
export function rotaryFrequencies(headDim: number, rope: unknown = {}, name = 'rope'): RotaryFrequencies {
  const D = expectDim('headDim', headDim);
  return frequenciesOf(expectRope(name, rope, D));
}

export function frequenciesOf(r: CheckedRope): RotaryFrequencies {
  const dim = r.rotaryDim;
  const half = dim / 2;
  if (r.invFreq) return { invFreq: r.invFreq, rotaryDim: dim, style: r.style, attentionFactor: r.attentionFactor ?? 1 };
  const base = new Float64Array(half);
  for (let t = 0; t < half; t++) base[t] = 1 / r.theta ** ((2 * t) / dim);
  const s = r.scaling;
  let attentionFactor = 1;
  if (s?.type === 'linear') {
    for (let t = 0; t < half; t++) base[t] = base[t]! / s.factor;
  } else if (s?.type === 'llama3') {
    // _compute_llama3_parameters: long wavelengths slowed by factor, short ones kept, a smooth
    // blend between the two wavelength bounds.
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let t = 0; t < half; t++) {
      const f = base[t]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) base[t] = f / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        base[t] = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
  } else if (s?.type === 'yarn') {
    // _compute_yarn_parameters: the dims between the correction range blend interpolated
    // (f / factor) and extrapolated (f) frequencies along a linear ramp.
    const correctionDim = (rotations: number) =>
      (dim * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(r.theta));
    let low = correctionDim(s.betaFast ?? 32);
    let high = correctionDim(s.betaSlow ?? 1);
    if (s.truncate ?? true) {
      low = Math.floor(low);
      high = Math.ceil(high);
    }
    low = Math.max(low, 0);
    high = Math.min(high, dim - 1);
    if (low === high) high += 0.001; // the ramp's guard against a division by zero
    for (let t = 0; t < half; t++) {
      const ramp = Math.min(1, Math.max(0, (t - low) / (high - low)));
      const extrapolation = 1 - ramp;
      const f = base[t]!;
      base[t] = (f / s.factor) * (1 - extrapolation) + f * extrapolation;
    }
    attentionFactor = s.factor <= 1 ? 1 : 0.1 * Math.log(s.factor) + 1;
  }
  return { invFreq: base, rotaryDim: dim, style: r.style, attentionFactor: r.attentionFactor ?? attentionFactor };
}

/** A validated applyRotaryEmbedding call. */
export interface RopeCall {
  plan: RopePlan;
  signal: AbortSignal | undefined;
}

export function planRope(x: unknown, options: unknown, isAsync: boolean): RopeCall {
  const o = expectOptions('options', options, isAsync ? ASYNC_OPTIONS : OPTIONS) as Partial<RotaryEmbeddingAsyncOptions> & Record<string, unknown>;
  const signal = isAsync ? expectSignal('options.signal', o.signal) : undefined;
  const B = optionalDim('options.batch', o.batch, 1);
  const H = expectDim('options.heads', o.heads);
  const D = expectDim('options.headDim', o.headDim);
  const layout = o.layout === undefined ? 'bhsd' : expectChoice('options.layout', o.layout, LAYOUTS);
  const S = o.seqLen === undefined ? rowsOf('x', x, B * H * D, `batch*heads*headDim = ${B}*${H}*${D}`) : expectDim('options.seqLen', o.seqLen);
  const dims = layout === 'bhsd' ? { B, H, S, D } : { B, S, H, D };
  const xt = expectF32('x', x, dims);
  const fr = frequenciesOf(expectRope('options.rope', o.rope ?? {}, D));
  const positions = expectPositions('options.positions', o.positions ?? 0, B, S);
  const given = o.out === undefined ? null : expectF32('options.out', o.out, dims);
  if (given && given !== xt) expectNoOverlap('options.out', given, [['x', xt]]);
  if (isAsync) expectFixedLength([['x', xt], ['options.out', given]]);
  const out = given ?? allocateF32('the output', xt.length, 'overwritten');
  const [sb, sh, ss] = stridesFor(layout, H, S, D);
  return {
    plan: {
      x: xt, out, B, S, H, D, strides: [sb, ss, sh], positions, invFreq: fr.invFreq, rotaryDim: fr.rotaryDim,
      interleaved: fr.style === 'interleaved', attentionFactor: fr.attentionFactor,
      norm: null, normSpan: 'head', normEps: 0, normOffset: 0,
    },
    signal,
  };
}
