/**
 * qkv/js: the same API as `qkv`, always on the pure TypeScript kernels. For comparison, tests,
 * and places where a native addon cannot load.
 * @module
 */
import { createApi } from '../api.js';
import { jsBackend } from '../backend.js';

const api = createApi(jsBackend);

/** See `scaledDotProductAttention` in `qkv`; runs on the TypeScript kernels. */
export const scaledDotProductAttention = api.scaledDotProductAttention;
/** Always 'js'. */
export const backend = api.backend;
export const info = api.info;

export type { ScaledDotProductAttention } from '../api.js';
export type * from '../types.js';
