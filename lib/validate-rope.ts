// Checks of the rotary settings (RopeSettings, RopeScaling) and of token positions, shared by
// applyRotaryEmbedding (lib/rope.ts) and the layer (lib/layer/settings.ts). Same message format
// as lib/validate.ts. Settings that contradict each other (invFreq with theta or scaling), an odd
// or too large rotaryDim, an unknown style or scaling type and non-finite factors are errors
// naming the option, before anything is computed.
import type { RopeScaling, RopeStyle } from './types.js';
import {
  expectBoolean, expectChoice, expectFinite, expectInt, expectOptions, rangeError, typeError,
} from './validate.js';
import { lengthOf, snapshotInt32, typedArrayKind } from './validate-buffer.js';

const INT32_MAX = 0x7fffffff;
const ROPE_KEYS = new Set(['theta', 'rotaryDim', 'style', 'scaling', 'invFreq', 'attentionFactor']);
const STYLES: readonly RopeStyle[] = ['half', 'interleaved'];
const SCALING_TYPES = ['linear', 'llama3', 'yarn'] as const;
const SCALING_KEYS = {
  linear: new Set(['type', 'factor']),
  llama3: new Set(['type', 'factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositions']),
  yarn: new Set(['type', 'factor', 'originalMaxPositions', 'betaFast', 'betaSlow', 'truncate']),
};

/** A finite number > 0. */
function expectPositive(name: string, v: unknown): number {
  const x = expectFinite(name, v);
  if (!(x > 0)) throw rangeError(name, 'a finite number > 0', x);
  return x;
}

/** RopeSettings read once into a plain object (a copy of the known keys), every value checked. */
export interface CheckedRope {
  theta: number;
  rotaryDim: number;
  style: RopeStyle;
  scaling: RopeScaling | null;
  invFreq: Float64Array | null;
  attentionFactor: number | null;
}

export function expectRope(name: string, v: unknown, headDim: number): CheckedRope {
  const o = expectOptions(name, v, ROPE_KEYS, 'an object { theta?, rotaryDim?, style?, scaling?, invFreq?, attentionFactor? }');
  const rotaryDim = o.rotaryDim === undefined ? headDim : expectInt(`${name}.rotaryDim`, o.rotaryDim, 1, INT32_MAX);
  if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
    throw rangeError(`${name}.rotaryDim`, `an even integer <= headDim = ${headDim}`, rotaryDim);
  }
  const style = o.style === undefined ? 'half' : expectChoice(`${name}.style`, o.style, STYLES);
  let invFreq: Float64Array | null = null;
  if (o.invFreq !== undefined) {
    for (const other of ['theta', 'scaling'] as const) {
      if (o[other] !== undefined) throw typeError(`${name}.${other}`, `nothing with ${name}.invFreq (it gives the frequencies directly)`, o[other]);
    }
    const kind = typedArrayKind(o.invFreq);
    if (kind !== 'Float32Array' && kind !== 'Float64Array') throw typeError(`${name}.invFreq`, 'Float32Array or Float64Array', o.invFreq);
    const f = o.invFreq as Float32Array | Float64Array;
    const n = lengthOf(f);
    if (n !== rotaryDim / 2) throw new RangeError(`Expected ${name}.invFreq.length to be rotaryDim/2 = ${rotaryDim / 2} but received ${n}`);
    invFreq = Float64Array.from(f);
    for (let t = 0; t < n; t++) if (!Number.isFinite(invFreq[t])) throw rangeError(`${name}.invFreq[${t}]`, 'a finite number', invFreq[t]);
  }
  const theta = o.theta === undefined ? 10000 : expectPositive(`${name}.theta`, o.theta);
  const scaling = o.scaling === undefined ? null : expectScaling(`${name}.scaling`, o.scaling);
  const attentionFactor = o.attentionFactor === undefined ? null : expectPositive(`${name}.attentionFactor`, o.attentionFactor);
  return { theta, rotaryDim, style, scaling, invFreq, attentionFactor };
}

function expectScaling(name: string, v: unknown): RopeScaling {
  const probe = expectOptions(name, v, new Set([...SCALING_KEYS.yarn, ...SCALING_KEYS.llama3]), "an object { type: 'linear' | 'llama3' | 'yarn', ... }");
  const type = expectChoice(`${name}.type`, probe.type, SCALING_TYPES);
  const o = expectOptions(name, probe, SCALING_KEYS[type]);
  const factor = expectPositive(`${name}.factor`, o.factor);
  if (type === 'linear') return { type, factor };
  const originalMaxPositions = expectPositive(`${name}.originalMaxPositions`, o.originalMaxPositions);
  if (type === 'llama3') {
    const lowFreqFactor = expectPositive(`${name}.lowFreqFactor`, o.lowFreqFactor);
    const highFreqFactor = expectPositive(`${name}.highFreqFactor`, o.highFreqFactor);
    if (!(highFreqFactor > lowFreqFactor)) throw rangeError(`${name}.highFreqFactor`, `a number > lowFreqFactor = ${lowFreqFactor}`, highFreqFactor);
    return { type, factor, lowFreqFactor, highFreqFactor, originalMaxPositions };
  }
  return {
    type, factor, originalMaxPositions,
    betaFast: o.betaFast === undefined ? 32 : expectPositive(`${name}.betaFast`, o.betaFast),
    betaSlow: o.betaSlow === undefined ? 1 : expectPositive(`${name}.betaSlow`, o.betaSlow),
    truncate: o.truncate === undefined ? true : expectBoolean(`${name}.truncate`, o.truncate),
  };
}

/**
 * Positions for B sequences of S tokens, as [B·S]: an integer start (row s at start + s), an
 * Int32Array of S positions shared by the batch, or of B·S (one row per sequence). Integers in
 * [0, 2^31 − 1]; the caller's array is read once (a snapshot).
 */
export function expectPositions(name: string, v: unknown, B: number, S: number): Int32Array {
  const out = new Int32Array(B * S);
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v + S - 1 > INT32_MAX) {
      throw rangeError(name, `an integer start in [0, ${INT32_MAX - S + 1}] (the last of S = ${S} positions must fit int32)`, v);
    }
    for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) out[b * S + s] = v + s;
    return out;
  }
  if (typedArrayKind(v) !== 'Int32Array') throw typeError(name, 'an integer start or an Int32Array of S or B*S positions', v);
  const p = snapshotInt32(v as Int32Array);
  if (p.length !== S && p.length !== B * S) {
    throw new RangeError(`Expected ${name}.length to be S = ${S} (shared) or B*S = ${B}*${S} = ${B * S} but received ${p.length}`);
  }
  for (let i = 0; i < p.length; i++) if (p[i]! < 0) throw rangeError(`${name}[${i}]`, 'a position >= 0', p[i]);
  if (p.length === B * S) return p;
  for (let b = 0; b < B; b++) out.set(p, b * S);
  return out;
}
