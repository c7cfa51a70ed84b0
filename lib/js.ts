/**
 * qkv/js: the same API as `qkv`, always on the pure TypeScript kernels, for comparison, tests,
 * and places where a native addon cannot load. The TypeScript kernels have no thread of their own:
 * the ...Async functions run on a later turn of the event loop, not in parallel with it.
 * @module
 */
import { createApi } from './api.js';
import { jsBackend } from './backend/js.js';
import { MultiHeadAttentionBase } from './layer/mha.js';
import { LinearBase } from './linear.js';
import type { LinearConfig, MultiHeadAttentionConfig } from './types.js';

export const { scaledDotProductAttention, scaledDotProductAttentionAsync, linear, linearAsync, backend, info } = createApi(jsBackend);

/** {@link LinearBase} on the TypeScript kernels. */
export class Linear extends LinearBase {
  constructor(config: LinearConfig) {
    super(jsBackend, config);
  }
}

/** {@link MultiHeadAttentionBase} on the TypeScript kernels. */
export class MultiHeadAttention extends MultiHeadAttentionBase {
  constructor(config: MultiHeadAttentionConfig) {
    super(jsBackend, config);
  }
}

export type { LinearAsyncFunction, LinearFunction, ScaledDotProductAttention, ScaledDotProductAttentionAsync } from './api.js';
export type { LinearBase } from './linear.js';
export type { MultiHeadAttentionBase } from './layer/mha.js';
export type * from './types.js';
