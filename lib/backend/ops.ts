// Running a list of ops on the calling thread: the sync path of every call, and the js backend's
// deferred one.
import type { Backend, Op } from './types.js';

export function runOps(backend: Backend, ops: readonly Op[]): void {
  for (const op of ops) {
    if (op.kind === 'sdpa') backend.sdpa(op.plan);
    else if (op.kind === 'rope') backend.rope(op.plan);
    else backend.gemm(op.x, op.M, op.K, op.packed, op.N, op.bias, op.y);
  }
}
