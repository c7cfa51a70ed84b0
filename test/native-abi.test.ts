// The argument ABI between lib/ and the binding is written twice, once per language:
// lib/backend/abi.ts and native/abi.h. This file fails when the two disagree (binding._abi() hands
// out the native tables), and checks that sdpaDims fills every slot where the binding reads it.
import { describe, expect, test } from 'vitest';
import {
  KV_DTYPES, LAYOUTS, MASK_KINDS, MAX_THREADS, SDPA_ARG_COUNT, SDPA_DIM_SLOTS, WEIGHT_DTYPES, WINDOW_UNBOUNDED, sdpaDims,
} from '../lib/backend/abi.js';
import type { SdpaPlan } from '../lib/plan.js';
import { nativeBinding } from '../lib/backend/select.js';

describe.skipIf(!nativeBinding)('native ABI (native/abi.h) = lib/backend/abi.ts', () => {
  // Read inside the tests, not while vitest collects them: with no binary the suite is skipped.
  const abi = () => nativeBinding!._abi();

  test('sdpa dims slots, in order', () => {
    expect(abi().sdpaDimSlots).toEqual([...SDPA_DIM_SLOTS]);
  });

  test('MAX_THREADS, the sdpa argument count, the unbounded window side', () => {
    expect(abi().maxThreads).toBe(MAX_THREADS);
    expect(abi().sdpaArgCount).toBe(SDPA_ARG_COUNT);
    expect(abi().windowUnbounded).toBe(WINDOW_UNBOUNDED);
  });

  test('layout, kv dtype, weight dtype and mask kind codes', () => {
    expect(abi().layouts).toEqual([...LAYOUTS]);
    expect(abi().kvDtypes).toEqual([...KV_DTYPES]);
    expect(abi().weightDtypes).toEqual([...WEIGHT_DTYPES]);
    expect(abi().maskKinds).toEqual([...MASK_KINDS]);
  });

  test('the binding reads each slot sdpaDims writes', () => {
    const f = (n: number) => new Float32Array(n);
    const plan = (o: Partial<SdpaPlan>): SdpaPlan => ({
      q: f(0), k: f(0), v: f(0), out: f(0), B: 2, H: 6, Hkv: 3, Sq: 5, Sk: 7, D: 4, Dv: 9, layout: 'bhsd', scale: 1,
      softcap: 0, causal: false, offsets: null, kvLengths: null, mask: null, maskDims: [1, 1, 1, 1],
      maskStrides: [0, 0, 0, 0], weights: null, scores: null, windowLeft: -1, windowRight: -1, sinks: null,
      alibi: null, lse: null, ...o,
    });
    const dims = sdpaDims(plan({ layout: 'bshd', causal: true, maskDims: [2, 1, 5, 7], kvDtype: 'float16' }));
    expect(dims.length).toBe(SDPA_DIM_SLOTS.length);
    const at = (slot: (typeof SDPA_DIM_SLOTS)[number]) => dims[SDPA_DIM_SLOTS.indexOf(slot)];
    expect([at('B'), at('H'), at('Hkv'), at('Sq'), at('Sk'), at('D'), at('Dv')]).toEqual([2, 6, 3, 5, 7, 4, 9]);
    expect([at('layout'), at('causal'), at('kvDtype')]).toEqual([LAYOUTS.indexOf('bshd'), 1, KV_DTYPES.indexOf('float16')]);
    expect([at('maskB'), at('maskH'), at('maskQ'), at('maskK')]).toEqual([2, 1, 5, 7]);
    const windowed = sdpaDims(plan({ windowLeft: 11, windowRight: WINDOW_UNBOUNDED }));
    expect([windowed[SDPA_DIM_SLOTS.indexOf('windowLeft')], windowed[SDPA_DIM_SLOTS.indexOf('windowRight')]]).toEqual([11, -1]);
    // A q one element short is named with the layout's formula: the binding read the shape and layout slots.
    const p = plan({ layout: 'bshd' });
    const args = [f(2 * 5 * 6 * 4 - 1), f(2 * 7 * 3 * 4), f(2 * 7 * 3 * 9), f(2 * 5 * 6 * 9), sdpaDims(p), 1, 0, null, null, null, null, null, null, null, null] as const;
    expect(() => nativeBinding!.sdpa(...args)).toThrow(
      new RangeError('Expected q.length to be B*Sq*H*D = 2*5*6*4 = 240 but received 239'),
    );
  });
});
