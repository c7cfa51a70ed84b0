// SPDX-License-Identifier: MIT
//
// Packed SGEMM for the projections, pure TypeScript: the twin of native/gemm.cc.
//   y[M, N] = x[M, K] . W^T + bias    outIn = true  ('out-in': W is [N, K], PyTorch nn.Linear)
//   y[M, N] = x[M, K] . W   + bias    outIn = false ('in-out': W is [K, N], GPT-2 Conv1D)
// The weight is packed once (packWeightJs) into panels of JR = 4 columns of B (B = W^T or W):
//   packed[jp * K * JR + k * JR + c] = B[k, jp * JR + c]     (columns past N are 0)
// so the inner loop over k reads one contiguous 16-byte row of the panel per step. gemmJs keeps a
// 4 x 4 tile of y in 16 local (double) accumulators: 8 loads per 16 multiply-adds, no allocation.
// Accumulates in double (JS numbers), rounds to float once per element on the store.
// Half weights (bfloat16 / float16 bits, packHalfWeightJs) keep the same panels as a Uint16Array:
// half the memory. gemmHalfJs widens one panel at a time (exactly, through widenTable) into a
// K x JR float scratch and runs the float loop on it, so its y is bitwise gemmJs's on the widened
// weight.

import { lengthError } from '../validate.js';
import { lengthOf } from '../validate-buffer.js';
import { widenTable } from './half.js';

/** Columns per packed panel. */
const JR = 4;
/** Rows of x per block: a 64 x K block of x stays in L2 while every panel passes over it. */
const MB = 64;

/** Length of the packed form of an [N, K] weight (either layout). */
export function packedLengthJs(N: number, K: number): number {
  return Math.ceil(N / JR) * JR * K;
}

/**
 * Packs a weight once for {@link gemmJs}. `w` is [N, K] when `outIn` (PyTorch nn.Linear), otherwise
 * [K, N]. Returns a new Float32Array of {@link packedLengthJs}(N, K) floats.
 */
export function packWeightJs(w: Float32Array, outIn: boolean, N: number, K: number): Float32Array {
  return packPanels(w, outIn, N, K, new Float32Array(packedLengthJs(N, K)));
}

/**
 * Packs a half weight (bfloat16 or float16 bits, laid out as packWeightJs's w) for
 * {@link gemmHalfJs}: the same panels, of bits, in a new Uint16Array. The bits are copied, never
 * converted.
 */
export function packHalfWeightJs(w: Uint16Array, outIn: boolean, N: number, K: number): Uint16Array {
  return packPanels(w, outIn, N, K, new Uint16Array(packedLengthJs(N, K)));
}

function packPanels<T extends Float32Array | Uint16Array>(w: T, outIn: boolean, N: number, K: number, packed: T): T {
  if (lengthOf(w) !== N * K) {
    throw lengthError('w', `N*K = ${N}*${K} = ${N * K}`, lengthOf(w));
  }
  if (outIn) {
    for (let j = 0; j < N; j++) {
      const base = ((j / JR) | 0) * K * JR + (j % JR);
      const row = j * K;  // W[j, :] is column j of B: read contiguously
      for (let k = 0; k < K; k++) packed[base + k * JR] = w[row + k]!;
    }
  } else {
    for (let k = 0; k < K; k++) {
      const row = k * N;  // W[k, :] is row k of B: read contiguously
      for (let j = 0; j < N; j++) packed[((j / JR) | 0) * K * JR + k * JR + (j % JR)] = w[row + j]!;
    }
  }
  return packed;
}

/**
 * y[i * N + j] = sum_k x[i * K + k] * B[k, j] + (bias ? bias[j] : 0), for i < M, j < N.
 * `packed` comes from {@link packWeightJs}(w, outIn, N, K); `bias` is [N] or null; y is [M, N].
 * y must not overlap x, packed or bias. Returns y.
 */
export function gemmJs(
  x: Float32Array,
  M: number,
  K: number,
  packed: Float32Array,
  N: number,
  bias: Float32Array | null | undefined,
  y: Float32Array,
): Float32Array {
  // Lengths from the internal slots (lengthOf), as the checks above the kernel read them.
  if (lengthOf(x) < M * K) throw lengthError('x', `at least M*K = ${M * K}`, lengthOf(x));
  if (lengthOf(packed) !== packedLengthJs(N, K)) throw lengthError('packed', `${packedLengthJs(N, K)}`, lengthOf(packed));
  if (bias && lengthOf(bias) !== N) throw lengthError('bias', `N = ${N}`, lengthOf(bias));
  if (lengthOf(y) < M * N) throw lengthError('y', `at least M*N = ${M * N}`, lengthOf(y));
  const panels = Math.ceil(N / JR);
  for (let i0 = 0; i0 < M; i0 += MB) {
    const iEnd = Math.min(M, i0 + MB);
    for (let jp = 0; jp < panels; jp++) panelRows(x, K, packed, jp * K * JR, jp, N, bias, y, i0, iEnd);
  }
  return y;
}

/**
 * {@link gemmJs} over a half weight packed by {@link packHalfWeightJs}: `dtype` says what its bits
 * are. Each panel is widened once into a K x JR float scratch, then every row of x runs over it.
 */
export function gemmHalfJs(
  x: Float32Array,
  M: number,
  K: number,
  packed: Uint16Array,
  N: number,
  bias: Float32Array | null | undefined,
  y: Float32Array,
  dtype: 'bfloat16' | 'float16',
): Float32Array {
  if (lengthOf(x) < M * K) throw lengthError('x', `at least M*K = ${M * K}`, lengthOf(x));
  if (lengthOf(packed) !== packedLengthJs(N, K)) throw lengthError('packed', `${packedLengthJs(N, K)}`, lengthOf(packed));
  if (bias && lengthOf(bias) !== N) throw lengthError('bias', `N = ${N}`, lengthOf(bias));
  if (lengthOf(y) < M * N) throw lengthError('y', `at least M*N = ${M * N}`, lengthOf(y));
  const table = widenTable(dtype);
  const panel = new Float32Array(K * JR);
  for (let jp = 0, panels = Math.ceil(N / JR); jp < panels; jp++) {
    for (let e = 0, src = jp * K * JR; e < K * JR; e++) panel[e] = table[packed[src + e]!]!;
    for (let i0 = 0; i0 < M; i0 += MB) panelRows(x, K, panel, 0, jp, N, bias, y, i0, Math.min(M, i0 + MB));
  }
  return y;
}

/** Columns of panel jp (its floats at packed[pb..]) for rows [i0, iEnd) of y. */
function panelRows(
  x: Float32Array, K: number, packed: Float32Array, pb: number, jp: number, N: number,
  bias: Float32Array | null | undefined, y: Float32Array, i0: number, iEnd: number,
): void {
  const j0 = jp * JR;
  const nc = Math.min(JR, N - j0);  // valid columns of this panel
  const d0 = bias ? bias[j0]! : 0;
  const d1 = bias && nc > 1 ? bias[j0 + 1]! : 0;
  const d2 = bias && nc > 2 ? bias[j0 + 2]! : 0;
  const d3 = bias && nc > 3 ? bias[j0 + 3]! : 0;
  let i = i0;
  // 4 x 4 tiles: rows i..i+3, columns j0..j0+3.
  for (; i + 4 <= iEnd; i += 4) {
    let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
    let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
    const x0 = i * K, x1 = x0 + K, x2 = x1 + K, x3 = x2 + K;
    for (let k = 0, b = pb; k < K; k++, b += JR) {
      const b0 = packed[b]!, b1 = packed[b + 1]!, b2 = packed[b + 2]!, b3 = packed[b + 3]!;
      const a0 = x[x0 + k]!, a1 = x[x1 + k]!, a2 = x[x2 + k]!, a3 = x[x3 + k]!;
      c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
      c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
      c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
      c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
    }
    const o = i * N + j0;
    if (nc === JR) {
      y[o] = c00 + d0; y[o + 1] = c01 + d1; y[o + 2] = c02 + d2; y[o + 3] = c03 + d3;
      const o1 = o + N;
      y[o1] = c10 + d0; y[o1 + 1] = c11 + d1; y[o1 + 2] = c12 + d2; y[o1 + 3] = c13 + d3;
      const o2 = o1 + N;
      y[o2] = c20 + d0; y[o2 + 1] = c21 + d1; y[o2 + 2] = c22 + d2; y[o2 + 3] = c23 + d3;
      const o3 = o2 + N;
      y[o3] = c30 + d0; y[o3 + 1] = c31 + d1; y[o3 + 2] = c32 + d2; y[o3 + 3] = c33 + d3;
    } else {
      // leftovers: the last panel has nc < 4 valid columns
      storeRow(y, o, nc, c00 + d0, c01 + d1, c02 + d2);
      storeRow(y, o + N, nc, c10 + d0, c11 + d1, c12 + d2);
      storeRow(y, o + 2 * N, nc, c20 + d0, c21 + d1, c22 + d2);
      storeRow(y, o + 3 * N, nc, c30 + d0, c31 + d1, c32 + d2);
    }
  }
  // leftovers: one row at a time (M % 4 rows of the block)
  for (; i < iEnd; i++) {
    let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    const x0 = i * K;
    for (let k = 0, b = pb; k < K; k++, b += JR) {
      const a0 = x[x0 + k]!;
      c0 += a0 * packed[b]!; c1 += a0 * packed[b + 1]!; c2 += a0 * packed[b + 2]!; c3 += a0 * packed[b + 3]!;
    }
    const o = i * N + j0;
    if (nc === JR) {
      y[o] = c0 + d0; y[o + 1] = c1 + d1; y[o + 2] = c2 + d2; y[o + 3] = c3 + d3;
    } else {
      storeRow(y, o, nc, c0 + d0, c1 + d1, c2 + d2);
    }
  }
}

/** Writes the first nc (1..3) of three values at y[o..]. */
function storeRow(y: Float32Array, o: number, nc: number, v0: number, v1: number, v2: number): void {
  y[o] = v0;
  if (nc > 1) y[o + 1] = v1;
  if (nc > 2) y[o + 2] = v2;
}
