// Typed arrays and their memory, as the checks see them: kind, length and place read through the
// intrinsic getters, small arrays copied once, outputs that must not share memory with an input,
// and allocations that fail with a RangeError naming the buffer. Part of the checks of
// lib/validate.ts (same message formats), kept apart because it is about memory, not values.
import { Buffer } from 'node:buffer';

// A typed array's kind, buffer, offset and size, read through the intrinsic %TypedArray% getters:
// a subclass (or an instance with own properties) may redefine `length`, `byteLength` or
// `constructor`, and a Proxy may answer `instanceof`, but these read the object's real internal
// slots (and answer undefined, or throw, for anything that is not a typed array).
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
function intrinsicGetter(key: PropertyKey): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(TypedArrayPrototype, key)!.get! as (this: unknown) => unknown;
}
const kindGetter = intrinsicGetter(Symbol.toStringTag);
const bufferGetter = intrinsicGetter('buffer');
const byteOffsetGetter = intrinsicGetter('byteOffset');
const byteLengthGetter = intrinsicGetter('byteLength');
const ELEMENT_BYTES: Record<string, number> = {
  Int8Array: 1, Uint8Array: 1, Uint8ClampedArray: 1, Int16Array: 2, Uint16Array: 2, Int32Array: 4, Uint32Array: 4,
  Float32Array: 4, Float64Array: 8, BigInt64Array: 8, BigUint64Array: 8,
};

/** 'Float32Array', 'Int32Array', …: what a typed array really is; undefined for anything else. */
export function typedArrayKind(v: unknown): string | undefined {
  return kindGetter.call(v) as string | undefined;
}

/** The buffer, byte offset and byte length of a typed array, as its internal slots hold them. */
export function viewOf(v: ArrayBufferView): { buffer: ArrayBufferLike; byteOffset: number; byteLength: number } {
  return {
    buffer: bufferGetter.call(v) as ArrayBufferLike,
    byteOffset: byteOffsetGetter.call(v) as number,
    byteLength: byteLengthGetter.call(v) as number,
  };
}

/**
 * A typed array's element count, from its internal byte length and kind. Not `v.length`: a
 * subclass can redefine it, and in Node 20 (V8 11.3), once a view over a resizable ArrayBuffer has
 * passed through a function, its optimized code can read a stale `.length` for a *detached* view
 * (the length it had before the transfer), while the byte length reads 0 as it should. The native
 * binding re-checks.
 */
export function lengthOf(v: ArrayBufferView): number {
  return (byteLengthGetter.call(v) as number) / (ELEMENT_BYTES[typedArrayKind(v) ?? ''] ?? 1);
}

/**
 * A copy of a small typed array that steers indexing (lengths, offsets): taken once, so a value
 * the caller (or another thread, through a SharedArrayBuffer) changes later cannot move what was
 * checked. The constructor copies from the internal slots: no getter or species is consulted.
 */
export function snapshotInt32(v: Int32Array): Int32Array {
  return new Int32Array(v);
}

const intrinsicFill = (TypedArrayPrototype as { fill: (this: ArrayBufferView, v: number, start: number, end: number) => unknown }).fill;

/** a[start, end) = value through the intrinsic fill, never an own or subclass `fill` of the caller's array. */
export function fillF32(a: Float32Array, value: number, start: number, end: number): void {
  intrinsicFill.call(a, value, start, end);
}

/**
 * A private copy of a Float32Array (a bias the layer keeps): made by the constructor from the
 * internal slots, never through the caller's `slice` or its species.
 */
export function copyF32(v: Float32Array): Float32Array {
  return new Float32Array(v);
}

/**
 * Elements [offset, offset + length) of a Float32Array as a plain view over the same memory, found
 * through the intrinsic getters (not the caller's `subarray`, which a subclass or its species can
 * redirect). The caller has checked that the range lies inside it.
 */
export function partOf(v: Float32Array, offset: number, length: number): Float32Array {
  const { buffer, byteOffset } = viewOf(v);
  return new Float32Array(buffer, byteOffset + 4 * offset, length);
}

const resizableGetter = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'resizable')?.get;
const growableGetter = typeof SharedArrayBuffer === 'function'
  ? Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'growable')?.get
  : undefined;

/**
 * Whether a typed array's memory can change size (a resizable ArrayBuffer, a growable
 * SharedArrayBuffer), read through the intrinsic getters: an own `resizable: false` on the buffer
 * does not hide it.
 */
export function isResizable(v: ArrayBufferView): boolean {
  const { buffer } = viewOf(v);
  if (typeof SharedArrayBuffer === 'function' && buffer instanceof SharedArrayBuffer) {
    try {
      return growableGetter?.call(buffer) === true;
    } catch {
      return false;
    }
  }
  try {
    return resizableGetter?.call(buffer) === true;
  } catch {
    return false;
  }
}

/** Whether two views share any byte of memory. */
export function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  // Called for every (output, input) pair of every call: the getters directly, no viewOf objects,
  // and the offsets only when the buffers are the same.
  if (bufferGetter.call(a) !== bufferGetter.call(b)) return false;
  const aStart = byteOffsetGetter.call(a) as number;
  const bStart = byteOffsetGetter.call(b) as number;
  return aStart < bStart + (byteLengthGetter.call(b) as number) && bStart < aStart + (byteLengthGetter.call(a) as number);
}

/** Rejects an output that shares memory with any input or other output. */
export function expectNoOverlap(
  name: string,
  out: ArrayBufferView,
  others: ReadonlyArray<readonly [string, ArrayBufferView | null | undefined]>,
): void {
  for (const [otherName, other] of others) {
    if (other && overlaps(out, other)) {
      throw new RangeError(`Expected ${name} not to overlap ${otherName} but they share memory`);
    }
  }
}

/** "256 GiB": a byte count for an allocation message. */
function bytesText(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/**
 * A new Float32Array of `length` elements for the buffer called `name`; a RangeError that says it
 * could not be allocated, and names the buffer, when it cannot (too long for a typed array, or
 * out of memory), instead of V8's bare "Invalid typed array length" / "Array buffer allocation failed".
 */
export function allocateF32(name: string, length: number, fill: 'zeros' | 'overwritten' = 'zeros'): Float32Array {
  try {
    if (fill === 'zeros') return new Float32Array(length);
    // Unzeroed memory, for a buffer every element of which a kernel writes before anything reads
    // it: zeroing a layer's output is event-loop time spent for nothing (bench/RESULTS.md).
    const bytes = Buffer.allocUnsafeSlow(4 * length);
    return new Float32Array(bytes.buffer, bytes.byteOffset, length);
  } catch (err) {
    throw allocationError(err, name, length, 'floats', 4, 'Float32Array');
  }
}

/** A new zeroed Uint16Array (float16 storage) of `length` elements, failing as allocateF32 does. */
export function allocateU16(name: string, length: number): Uint16Array {
  try {
    return new Uint16Array(length);
  } catch (err) {
    throw allocationError(err, name, length, 'halves', 2, 'Uint16Array');
  }
}

function allocationError(err: unknown, name: string, length: number, unit: string, bytes: number, kind: string): unknown {
  if (!(err instanceof RangeError)) return err;
  return new RangeError(
    `Could not allocate ${name}: ${length} ${unit} (${bytesText(bytes * length)}) do not fit in memory or in one ${kind} (${err.message})`,
  );
}

