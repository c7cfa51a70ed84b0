// The attention settings a MultiHeadAttention layer keeps for its whole life (DESIGN.md, "The
// layer with these settings"): rope, qkNorm, scale, softcap, window, sinks, alibi. Validated and
// resolved once, at construction: the rotary frequencies are computed here (lib/rope.ts), so a
// forward call only turns its positions into angles. E embedDim, H numHeads, Hkv numKvHeads,
// Dh headDim.
import { alibiSlopes } from '../alibi.js';
import type { RopePlan } from '../plan.js';
import { rotaryFrequencies } from '../rope.js';
import type { MultiHeadAttentionConfig, RotaryFrequencies } from '../types.js';
import {
  expectChoice, expectF32, expectFinite, expectOptions, expectScale, expectSoftcap, rangeError, typeError,
} from '../validate.js';
import { typedArrayKind } from '../validate-buffer.js';
import { expectPositions } from '../validate-rope.js';
import { expectPerHead, expectWindow, type CheckedWindow } from '../validate-tensor.js';

/** The config keys this module reads (lib/layer/weights.ts reads the others). */
export const SETTING_KEYS = ['rope', 'qkNorm', 'scale', 'softcap', 'window', 'sinks', 'alibi'] as const;

const QK_NORM_KEYS = new Set(['q', 'k', 'eps', 'weightOffset', 'span']);
const NORM_SPANS = ['head', 'all'] as const;

/** RMSNorm of the queries or the keys: private copies of the weights and the constants. */
export interface NormSetting {
  /** [Dh] ('head') or [heads·Dh] ('all'). */
  weight: Float32Array;
  span: 'head' | 'all';
  eps: number;
  offset: number;
}

export interface LayerSettings {
  scale: number;
  /** 0 = off. */
  softcap: number;
  /** Sides as given (WINDOW_UNBOUNDED where omitted), or null. */
  window: CheckedWindow | null;
  /** [H] private copies, or null. */
  sinks: Float32Array | null;
  alibi: Float32Array | null;
  /** The frequencies, computed once; null: no rotary embedding. */
  rope: RotaryFrequencies | null;
  qNorm: NormSetting | null;
  kNorm: NormSetting | null;
}

type SettingsConfig = Partial<Pick<MultiHeadAttentionConfig, (typeof SETTING_KEYS)[number]>>;

/** Reads the layer's attention settings from a config already checked for unknown keys. */
export function loadLayerSettings(c: SettingsConfig, H: number, Hkv: number, Dh: number): LayerSettings {
  const n = 'config.';
  return {
    scale: c.scale === undefined ? 1 / Math.sqrt(Dh) : expectScale(`${n}scale`, c.scale),
    softcap: c.softcap === undefined ? 0 : expectSoftcap(`${n}softcap`, c.softcap),
    window: c.window === undefined ? null : expectWindow(c.window, `${n}window`),
    sinks: c.sinks === undefined ? null : expectPerHead(`${n}sinks`, c.sinks, H).slice(),
    alibi: loadAlibi(c.alibi, H),
    rope: c.rope === undefined ? null : rotaryFrequencies(Dh, c.rope, `${n}rope`),
    ...loadQkNorm(c.qkNorm, H, Hkv, Dh),
  };
}

function loadAlibi(v: unknown, H: number): Float32Array | null {
  if (v === undefined || v === false) return null;
  if (v === true) return alibiSlopes(H);
  if (typedArrayKind(v) !== 'Float32Array') throw typeError('config.alibi', `true, false or a Float32Array [numHeads = ${H}]`, v);
  const slopes = expectPerHead('config.alibi', v, H).slice();
  for (let h = 0; h < H; h++) if (!Number.isFinite(slopes[h])) throw rangeError(`config.alibi[${h}]`, 'a finite slope', slopes[h]);
  return slopes;
}

function loadQkNorm(v: unknown, H: number, Hkv: number, Dh: number): Pick<LayerSettings, 'qNorm' | 'kNorm'> {
  if (v === undefined) return { qNorm: null, kNorm: null };
  const n = 'config.qkNorm';
  const o = expectOptions(n, v, QK_NORM_KEYS, 'an object { q?, k?, eps?, weightOffset?, span? }');
  const span = o.span === undefined ? 'head' : expectChoice(`${n}.span`, o.span, NORM_SPANS);
  const eps = o.eps === undefined ? 1e-6 : expectFinite(`${n}.eps`, o.eps);
  if (eps < 0) throw rangeError(`${n}.eps`, 'a number >= 0', eps);
  const offset = o.weightOffset === undefined ? 0 : expectFinite(`${n}.weightOffset`, o.weightOffset);
  if (o.q === undefined && o.k === undefined) throw typeError(n, 'q or k norm weights (or no qkNorm)', v);
  const weight = (side: 'q' | 'k', heads: number): NormSetting | null => {
    if (o[side] === undefined) return null;
    const dims = span === 'head' ? { Dh } : { [side === 'q' ? 'H' : 'Hkv']: heads, Dh };
    return { weight: expectF32(`${n}.${side}`, o[side], dims).slice(), span, eps, offset };
  };
  return { qNorm: weight('q', H), kNorm: weight('k', Hkv) };
}

/** Whether q or k needs a pass after its projection (norm and / or rotation). */
export function needsPass(s: LayerSettings, side: 'q' | 'k'): boolean {
  return s.rope !== null || (side === 'q' ? s.qNorm : s.kNorm) !== null;
}

/**
 * The pass over a projection's output y [B, S, heads, Dh] ('bshd', in place): its norm, then the
 * rotation at `positions` [B·S] (null when the layer has no rope).
 */
export function qkPass(
  s: LayerSettings, side: 'q' | 'k', y: Float32Array, B: number, S: number, heads: number, Dh: number,
  positions: Int32Array | null,
): RopePlan {
  const norm = side === 'q' ? s.qNorm : s.kNorm;
  const rope = s.rope;
  return {
    x: y, out: y, B, S, H: heads, D: Dh, strides: [S * heads * Dh, heads * Dh, Dh],
    positions: rope ? positions : null,
    invFreq: rope ? rope.invFreq : new Float64Array(0),
    rotaryDim: rope ? rope.rotaryDim : 0,
    interleaved: rope ? rope.style === 'interleaved' : false,
    attentionFactor: rope ? rope.attentionFactor : 1,
    norm: norm ? norm.weight : null,
    normSpan: norm ? norm.span : 'head',
    normEps: norm ? norm.eps : 0,
    normOffset: norm ? norm.offset : 0,
  };
}


/**
 * The rotary positions of a forward call, [B·S]: options.positions as applyRotaryEmbedding reads
 * them (a start, S shared positions or B·S), else row i of sequence b at base[b] + i (base: the
 * cache's lengths, or none). A start or a shared row with a cache whose sequences have different
 * lengths is ambiguous (which sequence does it follow?): a RangeError asking for B·S positions.
 */
export function forwardPositions(v: unknown, B: number, S: number, base: Int32Array | null): Int32Array {
  const name = 'options.positions';
  if (v === undefined) {
    const out = new Int32Array(B * S);
    for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) out[b * S + i] = (base ? base[b]! : 0) + i;
    return out;
  }
  const shared = typeof v === 'number' || (typedArrayKind(v) === 'Int32Array' && (v as Int32Array).length === S && B > 1);
  if (shared && base && base.some((n) => n !== base[0])) {
    throw rangeError(name, `B*S = ${B}*${S} positions (the cache's sequences have different lengths: ${Array.from(base).join(', ')})`, v);
  }
  return expectPositions(name, v, B, S); // already a fresh [B·S] array
}
