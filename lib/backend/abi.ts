// The argument ABI between lib/ and the native binding, defined once on the TypeScript side; its
// C++ twin is native/abi.h, and test/native-abi.test.ts checks that the two agree (binding._abi()).
//   sdpa(q, k, v, out, dims, scale, softcap, mask, offsets, kvLengths, weights, scores, sinks, alibi, lse)
//     dims: Int32Array of SDPA_DIM_SLOTS.length slots, in SDPA_DIM_SLOTS order (sdpaDims builds it).
//     The mask kind is not a slot: the binding reads it from the mask's type (MASK_KINDS). A window
//     side is WINDOW_UNBOUNDED or the keys a row sees on that side.
//   gemmPackedLength(N, K, dtype), gemmPack(w, outIn, N, K, packed, dtype): dtype a WEIGHT_DTYPES index.
//   setThreads(n): n in [1, MAX_THREADS].
import type { SdpaPlan } from '../plan.js';

/** The slots of sdpa's dims array, in order. */
export const SDPA_DIM_SLOTS = [
  'B', 'H', 'Hkv', 'Sq', 'Sk', 'D', 'Dv', 'layout', 'causal', 'maskB', 'maskH', 'maskQ', 'maskK', 'kvDtype',
  'windowLeft', 'windowRight',
] as const;

/** Positional arguments of sdpa (and of an 'sdpa' op of runAsync). */
export const SDPA_ARG_COUNT = 15;

/** A window side with no bound (dims slots 'windowLeft', 'windowRight'), as in SdpaPlan. */
export { WINDOW_UNBOUNDED } from '../plan.js';

export type SdpaDimSlot = (typeof SDPA_DIM_SLOTS)[number];

/** Most threads one call may use (setThreads, QKV_THREADS). */
export const MAX_THREADS = 1024;

/** Layout codes: the index of each name (dims slot 'layout'). */
export const LAYOUTS = ['bhsd', 'bshd'] as const;

/** kv dtype codes: the index of each name (dims slot 'kvDtype'). */
export const KV_DTYPES = ['float32', 'float16'] as const;

/**
 * Weight dtype codes: the index of each name (gemmPackedLength's and gemmPack's dtype argument).
 * The half types are raw bits in a Uint16Array, as safetensors stores BF16 / F16 tensors.
 */
export const WEIGHT_DTYPES = ['float32', 'bfloat16', 'float16'] as const;

/** Mask kinds, as the binding derives them from the mask: null, Float32Array (added), Uint8Array (0 blocks). */
export const MASK_KINDS = ['none', 'float', 'bool'] as const;

/** Each slot's index, as module constants: sdpaDims runs on every native call. */
const slot = (name: SdpaDimSlot): number => SDPA_DIM_SLOTS.indexOf(name);
const B = slot('B'), H = slot('H'), HKV = slot('Hkv'), SQ = slot('Sq'), SK = slot('Sk'), D = slot('D'), DV = slot('Dv');
const LAYOUT = slot('layout'), CAUSAL = slot('causal'), KV_DTYPE = slot('kvDtype');
const WINDOW_LEFT = slot('windowLeft'), WINDOW_RIGHT = slot('windowRight');
const MASK_B = slot('maskB'), MASK_H = slot('maskH'), MASK_Q = slot('maskQ'), MASK_K = slot('maskK');

/** The dims array the binding reads for a plan. Per call: an async call holds its own. */
export function sdpaDims(p: SdpaPlan): Int32Array {
  const dims = new Int32Array(SDPA_DIM_SLOTS.length);
  dims[B] = p.B;
  dims[H] = p.H;
  dims[HKV] = p.Hkv;
  dims[SQ] = p.Sq;
  dims[SK] = p.Sk;
  dims[D] = p.D;
  dims[DV] = p.Dv;
  dims[LAYOUT] = p.layout === 'bhsd' ? 0 : 1; // LAYOUTS order
  dims[CAUSAL] = p.causal ? 1 : 0;
  const m = p.maskDims;
  dims[MASK_B] = m[0];
  dims[MASK_H] = m[1];
  dims[MASK_Q] = m[2];
  dims[MASK_K] = m[3];
  dims[KV_DTYPE] = p.kvDtype === 'float16' ? 1 : 0; // KV_DTYPES order
  dims[WINDOW_LEFT] = p.windowLeft;
  dims[WINDOW_RIGHT] = p.windowRight;
  return dims;
}
