/**
 * qkv/js: the same API as `qkv`, always on the pure TypeScript kernels, for comparison, tests,
 * and places where a native addon cannot load. The TypeScript kernels have no thread of their own:
 * the ...Async functions run on a later turn of the event loop, not in parallel with it.
 * @module
 */
import {
  createApi, type Api, type ApplyRotaryEmbedding, type ApplyRotaryEmbeddingAsync, type LinearAsyncFunction, type LinearFunction, type ScaledDotProductAttention, type ScaledDotProductAttentionAsync,
} from './api.js';
import { jsBackend } from './backend/js.js';
import { MultiHeadAttentionBase } from './layer/mha.js';
import { LinearBase } from './linear.js';
import type { LinearConfig, MultiHeadAttentionConfig } from './types.js';

const api = createApi(jsBackend);

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

export { alibiSlopes } from './alibi.js';
export { rotaryFrequencies } from './rope.js';
export type { ApplyRotaryEmbedding, ApplyRotaryEmbeddingAsync, LinearAsyncFunction, LinearFunction, ScaledDotProductAttention, ScaledDotProductAttentionAsync } from './api.js';
export type { LinearBase } from './linear.js';
export type { MultiHeadAttentionBase } from './layer/mha.js';
export type * from './types.js';
