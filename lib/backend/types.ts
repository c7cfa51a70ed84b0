// The interface both kernel sets sit behind, and the operations they run. A layer forward is a
// short list of ops (one attention call, packed GEMMs); the async path hands the whole list to the
// backend at once, so a layer leaves the event loop once per call, not once per GEMM.
import type { RopePlan, SdpaPlan } from '../plan.js';
import type { BackendInfo, BackendName, WeightArray, WeightDtype } from '../types.js';

export interface SdpaOp {
  kind: 'sdpa';
  plan: SdpaPlan;
}

/**
 * A weight packed by one backend's packWeight, in that backend's own format (native: a
 * Float32Array with a header, its panels float or 16-bit; js: panels without a header, a
 * Float32Array or, for the half dtypes, a Uint16Array of bits).
 */
export interface PackedWeight {
  readonly dtype: WeightDtype;
  readonly data: Float32Array | Uint16Array;
}

/** y[M, N] = x[M, K] · B + bias, B packed by the same backend's packWeight(.., N, K). */
export interface GemmOp {
  kind: 'gemm';
  x: Float32Array;
  M: number;
  K: number;
  packed: PackedWeight;
  N: number;
  bias: Float32Array | null;
  y: Float32Array;
}

/** RMSNorm and / or rotary embedding in place or into plan.out (lib/plan.ts RopePlan). */
export interface RopeOp {
  kind: 'rope';
  plan: RopePlan;
}

export type Op = SdpaOp | GemmOp | RopeOp;

export interface Backend {
  readonly name: BackendName;
  sdpa(plan: SdpaPlan): void;
  /** Runs one RopePlan (norm, then rotation). */
  rope(plan: RopePlan): void;
  /**
   * Packs a weight once for {@link Backend.gemm}: `w` is [N, K] when `outIn` ('out-in', PyTorch
   * nn.Linear), otherwise [K, N] ('in-out'); a Float32Array for 'float32', a Uint16Array of bits
   * for 'bfloat16' and 'float16' (kept 16-bit in the panels). Returns a new buffer in this
   * backend's own panel format: a packed weight belongs to the backend that packed it. `w` is not
   * retained.
   */
  packWeight(w: WeightArray, outIn: boolean, N: number, K: number, dtype: WeightDtype): PackedWeight;
  /**
   * y[M, N] = x[M, K] · B + bias, B the weight packed by this backend's packWeight(.., N, K).
   * Lengths are exact (x M·K, y M·N, bias N or null); y must not overlap x, packed or bias.
   */
  gemm(x: Float32Array, M: number, K: number, packed: PackedWeight, N: number, bias: Float32Array | null, y: Float32Array): void;
  /** Runs ops in order before it returns (native: one call into the addon for the whole list). */
  run(ops: readonly Op[]): void;
  /**
   * Runs ops in order off the event loop and resolves when all are done. Native: on the library's
   * own thread pool (never libuv's). js: deferred to a later turn of the event loop, where it runs
   * (there is no other thread to run TypeScript kernels on). An abort before the work starts
   * rejects with an AbortError and runs nothing.
   */
  runAsync(ops: readonly Op[], signal: AbortSignal | undefined): Promise<void>;
  /** Threads one call may use. */
  threads(): number;
  info(): BackendInfo;
}
