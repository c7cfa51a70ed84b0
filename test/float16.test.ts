// SPDX-License-Identifier: MIT
//
// float16: the TypeScript conversion (lib/kernels/half.ts) against the definition (round half to even,
// subnormals, overflow, NaN), and the kernels' decoding of float16 K/V: every one of the 65536
// halves, the TypeScript kernel and every native kernel set this machine runs bitwise equal. (float16 caches:
// test/kv-cache.test.ts.)
import { describe, expect, test } from 'vitest';
import { floatsToHalves, halfTable, halvesToFloats } from '../lib/kernels/half.js';
import { sdpaJs } from '../lib/kernels/sdpa.js';
import type { SdpaPlan } from '../lib/plan.js';
import { nativeBinding } from '../lib/backend/select.js';
import { makeRng, nativeKernelSets } from './helpers.js';
import { referenceHalf } from './reference.js';

const toHalfAndBack = (xs: number[]) => {
  const h = new Uint16Array(xs.length);
  floatsToHalves(Float32Array.from(xs), h, 0);
  const back = new Float32Array(xs.length);
  halvesToFloats(h, back, 0);
  return { h, back };
};

describe('float16 conversion (TypeScript)', () => {
  test('special values: zeros, subnormals, max half, overflow, inf, NaN, ties to even', () => {
    const cases: Array<[number, number]> = [
      [0, 0], [-0, -0], [1, 1], [-2.5, -2.5],
      [2 ** -24, 2 ** -24],                  // smallest subnormal
      [2 ** -25, 0],                         // exactly half of it: tie to even (0)
      [-(2 ** -25), -0],
      [2 ** -25 * 1.0000001, 2 ** -24],      // just above the tie
      [3 * 2 ** -25, 2 * 2 ** -24],          // tie between 1 and 2 units: to 2 (even)
      [5 * 2 ** -25, 2 * 2 ** -24],          // tie between 2 and 3 units: to 2 (even)
      [1023 * 2 ** -24, 1023 * 2 ** -24],    // largest subnormal
      [2 ** -14 - 2 ** -26, 2 ** -14],       // rounds up into the smallest normal
      [2 ** -14, 2 ** -14],
      [1 + 2 ** -11, 1],                     // tie: to even (1)
      [1 + 3 * 2 ** -11, 1 + 2 ** -9],       // tie: to even (1 + 2 * 2^-10)
      [1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -10],
      [65504, 65504],                        // max half
      [65519.996, 65504],                    // below the midpoint
      [65520, Infinity],                     // the midpoint rounds to even = overflow
      [-70000, -Infinity], [3.4e38, Infinity],
      [Infinity, Infinity], [-Infinity, -Infinity],
    ];
    const { h, back } = toHalfAndBack(cases.map((c) => c[0]));
    cases.forEach(([x, want], i) => {
      expect(Object.is(back[i], want), `${x} -> ${back[i]} (bits ${h[i]!.toString(16)}), want ${want}`).toBe(true);
    });
    const nan = toHalfAndBack([NaN, -NaN]);
    for (let i = 0; i < 2; i++) {
      expect((nan.h[i]! & 0x7c00) === 0x7c00 && (nan.h[i]! & 0x3ff) !== 0).toBe(true);
      expect(Number.isNaN(nan.back[i]!)).toBe(true);
    }
  });

  test('every half round-trips to its own bits; the table holds the exact value of each', () => {
    const table = halfTable();
    expect(table.length).toBe(65536);
    const back = new Uint16Array(65536);
    floatsToHalves(table, back, 0);
    for (let h = 0; h < 65536; h++) {
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const sgn = h & 0x8000 ? -1 : 1;
      const want = e === 31 ? (m === 0 ? sgn * Infinity : NaN) : e === 0 ? sgn * m * 2 ** -24 : sgn * (1 + m / 1024) * 2 ** (e - 15);
      if (Number.isNaN(want)) {
        expect(Number.isNaN(table[h]!)).toBe(true);
        expect((back[h]! & 0x7c00) === 0x7c00 && (back[h]! & 0x3ff) !== 0).toBe(true);
      } else {
        if (!Object.is(table[h], want) || back[h] !== h) expect({ h, value: table[h], back: back[h] }).toEqual({ h, value: want, back: h });
      }
    }
  });

  test('random floats over every exponent round to the nearest half (ties to even)', () => {
    const rng = makeRng(16);
    const xs: number[] = [];
    for (let i = 0; i < 200000; i++) {
      const e = Math.floor(rng() * 50) - 30;     // 2^-30 .. 2^19: zero, subnormal, normal, overflow
      xs.push(Math.fround((rng() < 0.5 ? -1 : 1) * (1 + rng()) * 2 ** e));
    }
    // Exact midpoints between neighbouring halves, where the tie rule decides.
    for (let m = 0; m < 2048; m += 7) xs.push(Math.fround((1024 + m + 0.5) * 2 ** -10), Math.fround((m + 0.5) * 2 ** -24));
    const { back } = toHalfAndBack(xs);
    for (let i = 0; i < xs.length; i++) {
      const want = referenceHalf(xs[i]!);
      if (!Object.is(back[i], want)) expect({ x: xs[i], got: back[i] }).toEqual({ x: xs[i], got: want });
    }
  });
});

/** Sk = 1, weight exactly 1: out[x] = 0 + 1 · v[x], the decoded value of half x (−0 comes out +0). */
function decodePlan(v16: Uint16Array): SdpaPlan {
  const n = v16.length;
  return {
    q: Float32Array.of(1), k: Uint16Array.of(0x3800), v: v16, kvDtype: 'float16', out: new Float32Array(n).fill(7),
    B: 1, H: 1, Hkv: 1, Sq: 1, Sk: 1, D: 1, Dv: n, layout: 'bshd', scale: 1, softcap: 0, causal: false,
    windowLeft: -1, windowRight: -1, sinks: null, alibi: null, lse: null,
    offsets: null, kvLengths: null, mask: null, maskDims: [1, 1, 1, 1], maskStrides: [0, 0, 0, 0], weights: null, scores: null,
  };
}

describe('float16 K/V decoding: native kernels and the TypeScript kernel agree bitwise', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const table = halfTable();
  const expectDecoded = (out: Float32Array, who: string) => {
    const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    const refBits = new Uint32Array(table.buffer);
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(table[h]!)) {
        if (!Number.isNaN(out[h]!)) expect({ who, h, got: out[h] }).toEqual({ who, h, got: NaN });
        continue;
      }
      const want = h === 0x8000 ? 0 : refBits[h]!;  // 0 + 1·(−0) = +0
      if (outBits[h] !== want) expect({ who, h, got: out[h] }).toEqual({ who, h, got: table[h] });
    }
  };
  const jsOut = () => {
    const p = decodePlan(all);
    sdpaJs(p);
    return p.out;
  };
  test('TypeScript kernel', () => expectDecoded(jsOut(), 'js'));
  test.runIf(nativeBinding)('native kernel sets, bitwise equal to the TypeScript kernel', () => {
    const binding = nativeBinding!;
    const js = jsOut();
    for (const simd of nativeKernelSets) {
      expect(binding._setSimd(simd)).toBe(true);
      try {
        // At an odd element offset too (2-byte aligned only).
        for (const off of [0, 3]) {
          const v = new Uint16Array(65536 + off);
          v.set(all, off);
          const p = decodePlan(v.subarray(off));
          const dims = Int32Array.of(1, 1, 1, 1, 1, 1, 65536, 1, 0, 1, 1, 1, 1, 1, -1, -1);
          binding.sdpa(p.q, p.k, p.v, p.out, dims, 1, 0, null, null, null, null, null, null, null, null);
          expectDecoded(p.out, `${simd} offset ${off}`);
          const a = new Uint32Array(p.out.buffer);
          const b = new Uint32Array(js.buffer);
          for (let h = 0; h < 65536; h++) {
            if (!Number.isNaN(js[h]!) && a[h] !== b[h]) expect({ simd, h, native: p.out[h] }).toEqual({ simd, h, native: js[h] });
          }
        }
      } finally {
        binding._setSimd('auto');
      }
    }
  });
});
