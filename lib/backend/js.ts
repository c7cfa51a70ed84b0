// The TypeScript backend: the kernels of lib/kernels/ behind the Backend interface. No side
// effects: importing this does not load the addon (lib/backend/select.ts does).
import { gemmHalfJs, gemmJs, packHalfWeightJs, packWeightJs } from '../kernels/gemm.js';
import { ropeJs } from '../kernels/rope.js';
import { sdpaJs } from '../kernels/sdpa.js';
import { abortError, isAborted } from '../abort.js';
import { runOps } from './ops.js';
import type { Backend } from './types.js';
import { version } from './version.js';

export const jsBackend: Backend = {
  name: 'js',
  sdpa: sdpaJs,
  rope: ropeJs,
  packWeight: (w, outIn, N, K, dtype) => ({
    dtype,
    data: dtype === 'float32'
      ? packWeightJs(w as Float32Array, outIn, N, K)
      : packHalfWeightJs(w as Uint16Array, outIn, N, K),
  }),
  gemm: (x, M, K, packed, N, bias, y) => {
    if (packed.dtype === 'float32') gemmJs(x, M, K, packed.data as Float32Array, N, bias, y);
    else gemmHalfJs(x, M, K, packed.data as Uint16Array, N, bias, y, packed.dtype);
  },
  run: (ops) => runOps(jsBackend, ops),
  runAsync: (ops, signal) =>
    new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        if (signal && isAborted(signal)) return reject(abortError(signal));
        try {
          runOps(jsBackend, ops);
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    }),
  threads: () => 1,
  info: () => ({ backend: 'js', simd: 'js', threads: 1, version }),
};
