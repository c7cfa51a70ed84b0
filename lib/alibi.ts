// ALiBi's standard slopes (Press et al., "Train Short, Test Long"), computed as Hugging Face's
// BLOOM builds them (build_alibi_tensor): for H a power of two, slope_h = base^(h+1) with
// base = 2^(−8/H); otherwise the slopes of the power of two n below H, then every other slope of
// 2n (the odd powers of 2^(−8/(2n))) for the remaining heads. The base is rounded to float32 and
// raised in float64, then rounded once: torch's float32 pow of a float32 base gives the same value.
import { expectDim } from './validate.js';

/**
 * The standard ALiBi slopes for H heads, as a Float32Array [H], ready to pass as the `alibi`
 * option (BLOOM's rule when H is not a power of two; the same values as MPT's for powers of two).
 * @example
 * alibiSlopes(8); // Float32Array [0.5, 0.25, 0.125, …, 0.00390625]
 */
export function alibiSlopes(heads: number): Float32Array {
  const H = expectDim('heads', heads);
  const slopes = new Float32Array(H);
  let n = 1; // the largest power of two <= H
  while (n * 2 <= H) n *= 2;
  const base = Math.fround(2 ** -(8 / n));
  for (let h = 0; h < n; h++) slopes[h] = base ** (h + 1);
  if (n < H) {
    const extraBase = Math.fround(2 ** -(8 / (2 * n)));
    for (let x = 0; x < H - n; x++) slopes[n + x] = extraBase ** (2 * x + 1);
  }
  return slopes;
}
