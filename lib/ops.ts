// The operations a backend runs: one attention call or one packed GEMM. A layer forward is a short
// list of them; the async path hands the whole list to the backend at once, so a layer leaves the
// event loop once per call, not once per GEMM.
import type { Backend } from './backend.js';
import type { SdpaPlan } from './plan.js';

export interface SdpaOp {
  kind: 'sdpa';
  plan: SdpaPlan;
}

/** y[M, N] = x[M, K] · B + bias, B packed by the same backend's packWeight(.., N, K). */
export interface GemmOp {
  kind: 'gemm';
  x: Float32Array;
  M: number;
  K: number;
  packed: Float32Array;
  N: number;
  bias: Float32Array | null;
  y: Float32Array;
}

export type Op = SdpaOp | GemmOp;

/** Runs ops in order on the calling thread. */
export function runOps(backend: Backend, ops: readonly Op[]): void {
  for (const op of ops) {
    if (op.kind === 'sdpa') backend.sdpa(op.plan);
    else backend.gemm(op.x, op.M, op.K, op.packed, op.N, op.bias, op.y);
  }
}
