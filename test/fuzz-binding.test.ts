// Fuzzing the native binding directly, past every TypeScript check: random arguments to
// sdpa, gemm, gemmPack, gemmPackedLength, runAsync, cancelAsync, setThreads and _setSimd. The
// binding must refuse on its own whatever could make a kernel read or write out of bounds, with a
// TypeError or RangeError, and leave outputs untouched when it refuses; it must never crash. (Run
// under `npm run test:asan` too, where any out-of-bounds access aborts the run.)
// QKV_FUZZ_SEED / QKV_FUZZ_ONLY / QKV_FUZZ_SCALE as in test/fuzz-api.test.ts.
import { afterAll, describe, expect, test } from 'vitest';
import { nativeBinding } from '../lib/backend/select.js';
import { Gen, describeError, detached, fuzzLoop, makeF32, packWeight, sameBits, sdpaBindingDims, show } from './helpers.js';

const b = nativeBinding;
type AnyFn = (...args: unknown[]) => unknown;
const SENTINEL = -7.25;

/** Entries of sdpa's dims array this binding expects (13, or 14 with kvDtype). */

function isCleanError(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError;
}

/** A value of any kind, for arguments that should have been something else. */
function junk(g: Gen): unknown {
  return g.pick([
    undefined, null, 0, -1, 1.5, NaN, Infinity, 2 ** 31, 2 ** 53, -(2 ** 31), 'x', '', true, {}, [], [1, 2],
    () => 1, Symbol('s'), 10n, new Float64Array(4), new Uint8Array(3), new Int32Array(2), new Float32Array(0),
    detached(8), new DataView(new ArrayBuffer(8)), new ArrayBuffer(16), new SharedArrayBuffer(16),
  ]);
}

/** An int32 that is sometimes valid-looking and sometimes hostile. */
function wildInt(g: Gen, typicalArg: unknown): number {
  const typical = typeof typicalArg === 'number' ? typicalArg : 1;
  return g.pick([typical, typical, typical, 0, -1, 1, typical + 1, typical - 1, 2 ** 31 - 1, -(2 ** 31), 2 ** 16, 2 ** 30]);
}

interface SdpaCase {
  args: unknown[];
  outputs: Float32Array[];
  tags: string[];
}

function genSdpaArgs(g: Gen): SdpaCase {
  const Hkv = g.int(1, 3);
  const H = Hkv * g.int(1, 3);
  const [B, Sq, Sk, D, Dv] = [g.int(1, 3), g.int(1, 5), g.int(1, 6), g.int(1, 8), g.int(1, 8)];
  const f16 = g.chance(0.2);
  const kv = (n: number) => (f16 ? Uint16Array.from({ length: n }, () => 0x3c00 ^ (g.int(0, 0x3ff) & 0x1ff)) : g.f32(n));
  const full = [B, H, Sq, Sk];
  const maskDims = full.map((d) => (g.chance(0.5) ? d : 1));
  const maskLen = maskDims.reduce((a, c) => a * c, 1);
  const causal = g.chance(0.3) ? 1 : 0;
  const side = () => (g.chance(0.6) ? -1 : g.int(0, 6));
  const dims = sdpaBindingDims([B, H, Hkv, Sq, Sk, D, Dv, g.int(0, 1), causal, ...maskDims, f16 ? 1 : 0, side(), side()]);
  const windowed = dims[14] !== -1 || dims[15] !== -1;
  const out = makeF32(B * H * Sq * Dv, g.pick(['plain', 'shared', 'offset4'])).fill(SENTINEL);
  const args: unknown[] = [
    g.f32(B * H * Sq * D), kv(B * Hkv * Sk * D), kv(B * Hkv * Sk * Dv), out, dims,
    g.chance(0.8) ? g.r() : g.pick([0, -1, 1e30]), g.chance(0.8) ? 0 : g.r() * 3,
    g.chance(0.3) ? (g.chance(0.5) ? g.f32(maskLen) : new Uint8Array(maskLen).fill(1)) : null,
    causal || windowed || g.chance(0.2) ? Int32Array.from({ length: B }, () => wildInt(g, g.int(-2, 6))) : null,
    g.chance(0.3) ? Int32Array.from({ length: B }, () => g.int(0, Sk)) : null,
    g.chance(0.2) ? makeF32(B * H * Sq * Sk, 'plain').fill(SENTINEL) : null,
    g.chance(0.2) ? makeF32(B * H * Sq * Sk, 'offset12').fill(SENTINEL) : null,
    g.chance(0.2) ? g.f32(H) : null, // sinks
    g.chance(0.2) ? g.f32(H) : null, // alibi (offsets are then needed: a missing one is a clean RangeError)
    g.chance(0.2) ? makeF32(B * H * Sq, 'offset4').fill(SENTINEL) : null, // lse
  ];
  const tags: string[] = [];
  const mutations = g.chance(0.25) ? 0 : g.int(1, 3);
  for (let m = 0; m < mutations; m++) {
    const what = g.int(0, 9);
    if (what <= 3) {
      // A dims entry: shapes, layout, causal, mask dims, kvDtype, window sides.
      const i = g.int(0, dims.length - 1);
      dims[i] = wildInt(g, dims[i]);
      tags.push(`dims[${i}]=${dims[i]}`);
    } else if (what === 4) {
      const i = g.int(0, 14);
      args[i] = junk(g);
      tags.push(`arg${i}=${show(args[i])}`);
    } else if (what === 5) {
      // A buffer one element short or long.
      const i = g.pick([0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14]);
      const a = args[i];
      if (ArrayBuffer.isView(a) && !(a instanceof DataView)) {
        const ctor = a.constructor as new (n: number) => ArrayBufferView;
        const n = a.byteLength / (a as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
        args[i] = new ctor(Math.max(0, n + g.pick([-1, 1, 7])));
        tags.push(`arg${i} resized`);
      }
    } else if (what === 6) {
      // kvLengths out of range, offsets extreme.
      args[9] = Int32Array.from({ length: B }, () => g.pick([-1, Sk + 1, 2 ** 31 - 1, -(2 ** 31), g.int(0, Sk)]));
      tags.push(`kvLengths=${Array.from(args[9] as Int32Array)}`);
    } else if (what === 7) {
      // kvLengths or offsets sharing memory with out: what was checked must be what is used.
      const len = out.byteLength / 4;
      const target = g.pick([8, 9]);
      const view = new Int32Array(out.buffer, out.byteOffset, Math.min(B, len));
      if (view.length === B) {
        view.fill(g.int(0, Sk));
        args[target] = view;
        tags.push(`arg${target} aliases out`);
      }
    } else if (what === 8) {
      // Mask of the other kind, or dims for a mask that is not there.
      args[7] = g.pick([new Int8Array(maskLen), new Float64Array(maskLen), new Uint8Array(maskLen + 1), g.f32(maskLen + 3), null]);
      tags.push(`mask=${show(args[7])}`);
    } else {
      args.length = g.pick([0, 5, 11, 13, 20]);
      tags.push(`argc=${args.length}`);
    }
  }
  const outputs = [args[3], args[10], args[11], args[14]].filter(
    (a): a is Float32Array => a instanceof Float32Array && a.byteLength > 0,
  );
  return { args, outputs, tags };
}

interface GemmCase {
  fn: 'gemm' | 'gemmPack' | 'gemmPackedLength';
  args: unknown[];
  outputs: Float32Array[];
  tags: string[];
}

const packedFor = (N: number, K: number, g: Gen): Float32Array => packWeight(g.f32(N * K, 'plain'), N, K);

function genGemmArgs(g: Gen): GemmCase {
  const [M, K, N] = [g.int(1, 9), g.int(1, 40), g.int(1, 40)];
  const tags: string[] = [];
  const fn = g.pick(['gemm', 'gemm', 'gemmPack', 'gemmPackedLength'] as const);
  let args: unknown[];
  if (fn === 'gemmPackedLength') {
    args = [wildInt(g, N), wildInt(g, K)];
    if (g.chance(0.3)) args[g.int(0, 1)] = junk(g);
  } else if (fn === 'gemmPack') {
    args = [g.f32(N * K), g.chance(0.5), N, K, new Float32Array(b!.gemmPackedLength(N, K)).fill(SENTINEL)];
    if (g.chance(0.7)) {
      const i = g.int(0, 4);
      args[i] = i === 2 || i === 3 ? wildInt(g, args[i] as number) : junk(g);
      tags.push(`arg${i}=${show(args[i])}`);
    }
  } else {
    const packed = packedFor(N, K, g);
    const y = makeF32(M * N, g.pick(['plain', 'shared'])).fill(SENTINEL);
    args = [g.f32(M * K), M, K, packed, N, g.chance(0.5) ? g.f32(N) : null, y];
    const mutations = g.chance(0.25) ? 0 : g.int(1, 2);
    for (let m = 0; m < mutations; m++) {
      const what = g.int(0, 5);
      if (what === 0) {
        const i = g.pick([1, 2, 4]);
        args[i] = wildInt(g, args[i] as number);
        tags.push(`arg${i}=${args[i]}`);
      } else if (what === 1) {
        // A corrupted header: magic, N, K or the panel offset.
        const bad = Float32Array.from(packed);
        const i = g.int(0, 7);
        bad[i] = g.pick([NaN, -1, 1e9, 0, 65535, 8, 24, 23.5, bad[i] + 1]);
        args[3] = bad;
        tags.push(`packed[${i}]=${bad[i]}`);
      } else if (what === 2) {
        // A weight packed for another shape.
        const N2 = g.int(1, 40), K2 = g.int(1, 40);
        args[3] = packedFor(N2, K2, g);
        tags.push(`packed for ${N2}x${K2}`);
      } else if (what === 3) {
        // y overlapping x, packed or bias.
        const src = g.pick([0, 3, 5]);
        const a = args[src];
        if (a instanceof Float32Array && a.byteLength >= 4) {
          const len = a.byteLength / 4; // not a.length: see lengthOf in lib/validate.ts
          const buf = new ArrayBuffer(a.byteLength + 4 * M * N);
          const copy = new Float32Array(buf, 0, len);
          copy.set(a);
          args[src] = copy;
          const at = g.int(0, len - 1);
          args[6] = new Float32Array(buf, 4 * at, M * N).fill(SENTINEL);
          tags.push(`y overlaps arg${src}`);
        }
      } else if (what === 4) {
        const i = g.int(0, 6);
        args[i] = junk(g);
        tags.push(`arg${i}=${show(args[i])}`);
      } else {
        args.length = g.int(0, 6);
        tags.push(`argc=${args.length}`);
      }
    }
  }
  const outIndex = fn === 'gemm' ? 6 : fn === 'gemmPack' ? 4 : -1;
  const outputs = outIndex >= 0 && args[outIndex] instanceof Float32Array && (args[outIndex] as Float32Array).byteLength > 0
    ? [args[outIndex] as Float32Array]
    : [];
  return { fn, args, outputs, tags };
}

/** Calls f; an error must be a TypeError/RangeError with outputs untouched. Returns a problem or null. */
function callChecked(f: () => unknown, outputs: Float32Array[]): { problem: string | null; threw: boolean; result?: unknown } {
  const before = outputs.map((a) => Float32Array.from(a));
  try {
    return { problem: null, threw: false, result: f() };
  } catch (e) {
    if (!isCleanError(e)) return { problem: `threw ${describeError(e)}`, threw: true };
    for (let i = 0; i < outputs.length; i++) {
      if (outputs[i].byteLength > 0 && !sameBits(outputs[i], before[i])) {
        return { problem: `wrote an output before throwing ${(e as Error).message}`, threw: true };
      }
    }
    return { problem: null, threw: true };
  }
}

/** fuzzLoop for a body that returns only its problem. */
function loop(label: string, salt: number, ms: number, min: number, body: (g: Gen) => Promise<string | null>): Promise<string[]> {
  return fuzzLoop(`binding ${label}`, { salt, mix: 0x85ebca6b, ms, min }, async (g) => ({ problem: await body(g) }));
}

const threadsBefore = b?.threads() ?? 1;
afterAll(() => {
  b?.setThreads(threadsBefore);
  b?._setSimd('auto');
});

describe.skipIf(!b)('fuzz-binding: the binding defends itself', () => {
  test('sdpa', async () => {
    const failures = await loop('sdpa', 0x10, 2500, 2000, async (g) => {
      const c = genSdpaArgs(g);
      const r = callChecked(() => (b!.sdpa as AnyFn)(...c.args), c.outputs);
      return r.problem ? `[${c.tags.join('; ')}] ${r.problem}` : null;
    });
    expect(failures, failures.join('\n')).toEqual([]);
  });

  test('gemm, gemmPack, gemmPackedLength', async () => {
    const failures = await loop('gemm', 0x20, 2000, 2000, async (g) => {
      const c = genGemmArgs(g);
      const r = callChecked(() => (b![c.fn] as AnyFn)(...c.args), c.outputs);
      if (!r.problem && c.fn === 'gemmPackedLength' && !r.threw && !(Number.isSafeInteger(r.result) && (r.result as number) > 0)) {
        return `${c.fn}(${c.args.map((a) => show(a)).join(', ')}) returned ${String(r.result)}`;
      }
      return r.problem ? `${c.fn} [${c.tags.join('; ')}] ${r.problem}` : null;
    });
    expect(failures, failures.join('\n')).toEqual([]);
  });

  test('runAsync and cancelAsync', async () => {
    const pending: Array<Promise<string | null>> = [];
    const settlers = new Map<number, (v: string | null) => void>();
    const what = new Map<number, string>();
    /** Waits for the calls in flight; one whose callback never comes is a failure. */
    const drain = async (): Promise<string[]> => {
      const all = pending.splice(0);
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 20_000).unref());
      const results = await Promise.race([Promise.all(all), timeout]);
      if (results === 'timeout') {
        return [`a runAsync callback never came (${settlers.size} calls outstanding: ${[...settlers.keys()].map((k) => `${k} ${what.get(k)}`).join(' | ')})`];
      }
      return (results as Array<string | null>).filter((p): p is string => p !== null);
    };
    const failures = await loop('runAsync', 0x30, 2000, 600, async (g) => {
      const ops: unknown[] = [];
      const outputs: Float32Array[] = [];
      const tags: string[] = [];
      const count = g.int(0, 4);
      for (let i = 0; i < count; i++) {
        if (g.chance(0.5)) {
          const c = genSdpaArgs(g);
          ops.push(['sdpa', ...c.args]);
          outputs.push(...c.outputs);
          tags.push(`sdpa[${c.tags.join(';')}]`);
        } else {
          const c = genGemmArgs(g);
          if (c.fn !== 'gemm') continue;
          ops.push(['gemm', ...c.args]);
          outputs.push(...c.outputs);
          tags.push(`gemm[${c.tags.join(';')}]`);
        }
      }
      const shape = g.int(0, 9);
      if (shape === 0 && ops.length > 0) {
        ops[g.int(0, ops.length - 1)] = junk(g);
        tags.push('junk op');
      } else if (shape === 1 && ops.length > 0) {
        (ops[0] as unknown[])[0] = g.pick(['SDPA', 'gemm ', 1, null]);
        tags.push('bad tag');
      } else if (shape === 2 && ops.length > 1) {
        // A getter that detaches an earlier op's buffers while the ops are being read.
        const first = ops[0] as unknown[];
        const victim = first.find((a) => a instanceof Float32Array && a.byteLength > 0) as Float32Array | undefined;
        const last = ops.pop();
        Object.defineProperty(ops, ops.length, {
          enumerable: true,
          get() {
            if (victim && victim.byteLength > 0) structuredClone(victim.buffer, { transfer: [victim.buffer as ArrayBuffer] });
            return last;
          },
        });
        tags.push('getter detaches ops[0]');
      } else if (shape === 3 && ops.length > 1) {
        // One op's output over another op's packed weight (or the op list shares one buffer).
        const gemmOp = ops.find((o) => Array.isArray(o) && o[0] === 'gemm') as unknown[] | undefined;
        const other = ops.find((o) => o !== gemmOp && Array.isArray(o)) as unknown[] | undefined;
        if (gemmOp && other && gemmOp[4] instanceof Float32Array) {
          const packed = gemmOp[4];
          const outIndex = other[0] === 'gemm' ? 7 : 4;
          const outLen = other[outIndex] instanceof Float32Array ? (other[outIndex] as Float32Array).byteLength / 4 : 0;
          if (outLen > 0 && outLen <= packed.byteLength / 4) {
            other[outIndex] = new Float32Array(packed.buffer, packed.byteOffset, outLen);
            tags.push('output over a packed weight');
          }
        }
      } else if (shape === 4) {
        tags.push('not an array');
      }
      const opsArg = shape === 4 ? g.pick([junk(g), { length: 1, 0: ops[0] }]) : ops;
      const snapshotOut = outputs.map((a) => (a.byteLength > 0 ? Float32Array.from(a) : a));
      let settle!: (v: string | null) => void;
      const done = new Promise<string | null>((resolve) => (settle = resolve));
      let callId = -1;
      const notCallback = (j: unknown) => (typeof j === 'function' ? 'not a function' : j);
      const cb = g.chance(0.05) ? notCallback(junk(g)) : (err: unknown) => {
        settlers.delete(callId);
        settle(err === null || err instanceof RangeError ? null : `callback got ${String(err)}`);
      };
      let id: unknown;
      try {
        id = (b!.runAsync as AnyFn)(opsArg, cb);
      } catch (e) {
        if (!isCleanError(e)) return `[${tags.join(' ')}] threw ${String(e)}`;
        for (let i = 0; i < outputs.length; i++) {
          if (outputs[i].byteLength > 0 && !sameBits(outputs[i], snapshotOut[i])) return `[${tags.join(' ')}] wrote before throwing`;
        }
        return null;
      }
      if (typeof id !== 'number') return `runAsync returned ${String(id)}`;
      callId = id;
      settlers.set(id, settle);
      what.set(id, `#${tags.join(' ')} ops=${ops.length}`);
      pending.push(done);
      if (g.chance(0.3)) {
        // Cancel it, or another call's id, or junk.
        const target = g.pick([id, id + 1, id - 1, 0, 2 ** 32 - 1, junk(g)]);
        const r = callChecked(() => (b!.cancelAsync as AnyFn)(target), []);
        if (typeof target === 'number' && what.has(target)) what.set(target, `${what.get(target)} cancel(${String(r.result)}) by ${id}`);
        if (r.problem) return `cancelAsync(${show(target)}) ${r.problem}`;
        if (r.result === true) {
          // A cancelled call never calls back, and changes nothing.
          const s = settlers.get(target as number);
          if (!s) return `cancelAsync(${show(target)}) returned true for no call in flight`;
          settlers.delete(target as number);
          s(null);
        }
      }
      if (pending.length > 64) {
        const problems = await drain();
        if (problems.length) return problems[0];
      }
      return null;
    });
    const rest = await drain();
    expect([...failures, ...rest], [...failures, ...rest].join('\n')).toEqual([]);
  });

  test('setThreads, _setSimd, threads', async () => {
    const failures = await loop('control', 0x40, 700, 300, async (g) => {
      const which = g.int(0, 2);
      if (which === 0) {
        const n = g.pick([1, 2, 3, 8, 0, -1, 1025, 1.5, NaN, junk(g)]);
        const r = callChecked(() => (b!.setThreads as AnyFn)(n), []);
        return r.problem ? `setThreads(${show(n)}) ${r.problem}` : null;
      }
      if (which === 1) {
        const name = g.pick(['auto', 'scalar', 'avx2', 'neon', 'avx512', '', 'AUTO', junk(g)]);
        const r = callChecked(() => (b!._setSimd as AnyFn)(name), []);
        return r.problem ? `_setSimd(${show(name)}) ${r.problem}` : null;
      }
      // Work under whatever was just set.
      const c = genSdpaArgs(g);
      const r = callChecked(() => (b!.sdpa as AnyFn)(...c.args), c.outputs);
      return r.problem ? `sdpa after control [${c.tags.join('; ')}] ${r.problem}` : null;
    });
    b!.setThreads(threadsBefore);
    b!._setSimd('auto');
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
