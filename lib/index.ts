/**
 * qkv: transformer self-attention on the CPU.
 *
 * The backend is chosen once, at load, from QKV_BACKEND (auto | native | js): auto uses the
 * native SIMD addon when it loads and the TypeScript kernels otherwise (info().nativeError says
 * why). `qkv/js` exports the same API on the TypeScript kernels.
 * @module
 */
import { createApi } from './api.js';
import { activeBackend } from './select.js';

const api = createApi(activeBackend);

/**
 * Scaled dot-product attention: out = softmax(scale·q·kᵀ + mask) · v, per batch and head.
 *
 * Shapes ('bhsd', the default layout): q [B,H,Sq,D], k [B,Hkv,Sk,D], v [B,Hkv,Sk,Dv] →
 * out [B,H,Sq,Dv]; with layout 'bshd' the head and sequence axes swap. Inputs are read in place
 * (any byteOffset, never copied). Returns `out`, or `{ output, weights?, scores? }` when
 * `weights: true` or `scores: true`.
 *
 * @throws TypeError for a wrong kind of argument or an unknown option name.
 * @throws RangeError for a wrong size, dim or value. Nothing is written when it throws.
 * @example
 * const out = scaledDotProductAttention(q, k, v, { heads: 8, seqQ: 128, headDim: 64, causal: true });
 */
export const scaledDotProductAttention = api.scaledDotProductAttention;

/** 'native' or 'js': which kernels this module runs. */
export const backend = api.backend;

/** Backend, SIMD kernel set, threads, version, and why native did not load (if it did not). */
export const info = api.info;

export type { ScaledDotProductAttention } from './api.js';
export type * from './types.js';
