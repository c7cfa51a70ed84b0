/**
 * qkv: transformer self-attention on the CPU.
 *
 * The backend is chosen once, at load, from QKV_BACKEND (auto | native | js): auto uses the
 * native SIMD addon when it loads and the TypeScript kernels otherwise (info().nativeError says
 * why). `qkv/js` exports the same API on the TypeScript kernels. The functions are documented
 * on their types (lib/api.ts), the classes on their bases (lib/linear.ts, lib/layer/mha.ts).
 * @module
 */
import {
  createApi, type Api, type ApplyRotaryEmbedding, type ApplyRotaryEmbeddingAsync, type LinearAsyncFunction, type LinearFunction, type ScaledDotProductAttention, type ScaledDotProductAttentionAsync,
} from './api.js';
import { activeBackend, setPoolThreads } from './backend/select.js';
import { MultiHeadAttentionBase } from './layer/mha.js';
import { LinearBase } from './linear.js';
import type { LinearConfig, MultiHeadAttentionConfig } from './types.js';

const api = createApi(activeBackend);

// One statement per export (not a destructuring): editors then show each one's documentation,
// written once on its type in lib/api.ts.
export const scaledDotProductAttention: ScaledDotProductAttention = api.scaledDotProductAttention;
export const scaledDotProductAttentionAsync: ScaledDotProductAttentionAsync = api.scaledDotProductAttentionAsync;
export const linear: LinearFunction = api.linear;
export const linearAsync: LinearAsyncFunction = api.linearAsync;
export const applyRotaryEmbedding: ApplyRotaryEmbedding = api.applyRotaryEmbedding;
export const applyRotaryEmbeddingAsync: ApplyRotaryEmbeddingAsync = api.applyRotaryEmbeddingAsync;
export const backend: Api['backend'] = api.backend;
export const info: Api['info'] = api.info;

/**
 * Sets how many threads one native call may use (the pool is process-wide: every call, layer and
 * worker_thread shares it). Default: QKV_THREADS, else the CPUs this process may use (affinity and
 * cgroup quota). No effect on the js backend.
 */
export function setThreads(n: number): void {
  setPoolThreads(n);
}

/** {@link LinearBase} on the backend chosen at load. */
export class Linear extends LinearBase {
  constructor(config: LinearConfig) {
    super(activeBackend, config);
  }
}

/** {@link MultiHeadAttentionBase} on the backend chosen at load. */
export class MultiHeadAttention extends MultiHeadAttentionBase {
  constructor(config: MultiHeadAttentionConfig) {
    super(activeBackend, config);
  }
}

export { alibiSlopes } from './alibi.js';
export { rotaryFrequencies } from './rope.js';
export type { ApplyRotaryEmbedding, ApplyRotaryEmbeddingAsync, LinearAsyncFunction, LinearFunction, ScaledDotProductAttention, ScaledDotProductAttentionAsync } from './api.js';
export type { LinearBase } from './linear.js';
export type { MultiHeadAttentionBase } from './layer/mha.js';
export type * from './types.js';
