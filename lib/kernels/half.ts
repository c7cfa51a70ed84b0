// SPDX-License-Identifier: MIT
//
// IEEE 754 binary16 ("half", float16) <-> binary32 in TypeScript, for the float16 KVCache and the
// TypeScript kernel that reads it, and bfloat16 -> binary32 for half-size projection weights.
// Halves travel as their 16 bits in a Uint16Array.
//   bfloat16 -> float: the float whose upper 16 bits they are (exact, NaN payloads kept).
//   half -> float: exact for every half (each is a float); a 65536-entry Float32Array table built
//     once, on first use, from the bits (subnormals, +-0, +-inf and NaN included). The native
//     kernels decode the same way (native/kernels/vec_math.h HalfToFloat, F16C, NEON fcvtl).
//   float -> half: round to nearest, ties to even, in one step from the float's bits (no double
//     rounding); magnitudes from 65520 up (the midpoint past the largest half, 65504) become +-inf;
//     below 2^-14 the result is a subnormal half or +-0; NaN stays a (quiet) NaN.

let table: Float32Array | null = null;
let bfloat16: Float32Array | null = null;

/** The value of every bfloat16, indexed by its bits. */
export function bfloat16Table(): Float32Array {
  if (bfloat16 !== null) return bfloat16;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) bits[h] = h << 16;
  bfloat16 = new Float32Array(bits.buffer);
  return bfloat16;
}

/** The widening table of a half weight dtype: value = table[bits]. */
export function widenTable(dtype: 'bfloat16' | 'float16'): Float32Array {
  return dtype === 'bfloat16' ? bfloat16Table() : halfTable();
}

/** A new Float32Array of the values of src's halves (bfloat16 or float16 bits), exactly. */
export function widenHalves(src: Uint16Array, dtype: 'bfloat16' | 'float16'): Float32Array {
  const t = widenTable(dtype);
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
  return out;
}

/** The value of every half, indexed by its bits. */
export function halfTable(): Float32Array {
  if (table !== null) return table;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let man = h & 0x3ff;
    if (exp === 0x1f) {
      bits[h] = sign | 0x7f800000 | (man << 13) | (man !== 0 ? 0x400000 : 0); // inf, quiet NaN
    } else if (exp !== 0) {
      bits[h] = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man === 0) {
      bits[h] = sign;
    } else { // subnormal man·2^-24: move the leading 1 to bit 10
      let e = 113;
      while ((man & 0x400) === 0) {
        man <<= 1;
        e--;
      }
      bits[h] = sign | (e << 23) | ((man & 0x3ff) << 13);
    }
  }
  table = new Float32Array(bits.buffer);
  return table;
}

/** The half nearest to the float with bits `x` (round to nearest even). */
function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const ax = x & 0x7fffffff;
  if (ax >= 0x47800000) { // >= 65536, inf or NaN
    return ax > 0x7f800000 ? sign | 0x7e00 | ((ax >>> 13) & 0x3ff) : sign | 0x7c00;
  }
  if (ax >= 0x38800000) { // a normal half (2^-14 and up); rounding up may carry into inf
    return sign | ((ax - 0x38000000 + 0xfff + ((ax >>> 13) & 1)) >>> 13);
  }
  if (ax < 0x33000000) return sign; // below 2^-25: rounds to 0 (2^-25 itself is a tie to 0)
  // Subnormal half: round(m · 2^(e-126)) units of 2^-24, m the 24-bit significand.
  const e = ax >>> 23;
  const m = (ax & 0x7fffff) | 0x800000;
  const shift = 126 - e; // 14 .. 24
  const q = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  return sign | (q + (rem > halfway || (rem === halfway && (q & 1) === 1) ? 1 : 0));
}

/** dst[dstOffset + i] = half(src[i]) for every element of src. */
export function floatsToHalves(src: Float32Array, dst: Uint16Array, dstOffset: number): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < u.length; i++) dst[dstOffset + i] = halfBits(u[i]!);
}

/** dst[dstOffset + i] = value of src[i] (a half's bits) for every element of src. */
export function halvesToFloats(src: Uint16Array, dst: Float32Array, dstOffset: number): void {
  const t = halfTable();
  for (let i = 0; i < src.length; i++) dst[dstOffset + i] = t[src[i]!]!;
}
