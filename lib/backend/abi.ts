// The argument ABI between lib/ and the native binding, defined once on the TypeScript side; its
// C++ twin is native/abi.h, and test/native-abi.test.ts checks that the two agree (binding._abi()).
//   sdpa(q, k, v, out, dims, scale, softcap, mask, offsets, kvLengths, weights, scores)
//     dims: Int32Array of SDPA_DIM_SLOTS.length slots, in SDPA_DIM_SLOTS order (sdpaDims builds it).
//     The mask kind is not a slot: the binding reads it from the mask's type (MASK_KINDS).
//   setThreads(n): n in [1, MAX_THREADS].
import type { SdpaPlan } from '../plan.js';

/** The slots of sdpa's dims array, in order. */
export const SDPA_DIM_SLOTS = [
  'B', 'H', 'Hkv', 'Sq', 'Sk', 'D', 'Dv', 'layout', 'causal', 'maskB', 'maskH', 'maskQ', 'maskK', 'kvDtype',
] as const;

export type SdpaDimSlot = (typeof SDPA_DIM_SLOTS)[number];

/** Most threads one call may use (setThreads, QKV_THREADS). */
export const MAX_THREADS = 1024;

/** Layout codes: the index of each name (dims slot 'layout'). */
export const LAYOUTS = ['bhsd', 'bshd'] as const;

/** kv dtype codes: the index of each name (dims slot 'kvDtype'). */
export const KV_DTYPES = ['float32', 'float16'] as const;

/** Mask kinds, as the binding derives them from the mask: null, Float32Array (added), Uint8Array (0 blocks). */
export const MASK_KINDS = ['none', 'float', 'bool'] as const;

const SLOT = Object.fromEntries(SDPA_DIM_SLOTS.map((name, i) => [name, i])) as Record<SdpaDimSlot, number>;

/** The dims array the binding reads for a plan. Per call: an async call holds its own. */
export function sdpaDims(p: SdpaPlan): Int32Array {
  const dims = new Int32Array(SDPA_DIM_SLOTS.length);
  dims[SLOT.B] = p.B;
  dims[SLOT.H] = p.H;
  dims[SLOT.Hkv] = p.Hkv;
  dims[SLOT.Sq] = p.Sq;
  dims[SLOT.Sk] = p.Sk;
  dims[SLOT.D] = p.D;
  dims[SLOT.Dv] = p.Dv;
  dims[SLOT.layout] = LAYOUTS.indexOf(p.layout);
  dims[SLOT.causal] = p.causal ? 1 : 0;
  [dims[SLOT.maskB], dims[SLOT.maskH], dims[SLOT.maskQ], dims[SLOT.maskK]] = p.maskDims;
  dims[SLOT.kvDtype] = KV_DTYPES.indexOf(p.kvDtype ?? 'float32');
  return dims;
}
