// The checks and errors of the ...Async functions: options.signal must be a real AbortSignal (an
// aborted one rejects a call that has not started with an AbortError and leaves `out` untouched:
// lib/abort.ts), and errors found on the pool are re-told with the caller's stack.
import { isAborted } from './abort.js';
import { typeError } from './validate.js';
import { isResizable } from './validate-buffer.js';

/**
 * options.signal: undefined, or an AbortSignal whose internal state can be read. An object that
 * only inherits from AbortSignal.prototype (`Object.create(AbortSignal.prototype)`) is refused here,
 * synchronously, so that no later read of it can throw where nothing would catch it.
 */
export function expectSignal(name: string, v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw typeError(name, 'an AbortSignal', v);
  try {
    isAborted(v);
  } catch {
    throw typeError(name, 'an AbortSignal (this object only inherits from AbortSignal.prototype)', v);
  }
  return v;
}

/**
 * The arrays an async call reads or writes after it returns must keep their memory until it
 * settles: a view over a resizable ArrayBuffer (or a growable SharedArrayBuffer) could shrink under
 * the pool thread that is writing it, which is heap corruption, not an error. Refused up front.
 */
export function expectFixedLength(arrays: ReadonlyArray<readonly [string, ArrayBufferView | null | undefined]>): void {
  for (const [name, a] of arrays) {
    if (!a) continue;
    if (isResizable(a)) {
      throw typeError(name, 'a typed array over a fixed-length buffer (an async call holds it until it settles; a resizable buffer could shrink under it)', a);
    }
  }
}

/**
 * An error created where the caller called, so that a failure found later, on the pool, still
 * points at the caller's line (sharp does the same).
 */
export function callerError(): RangeError {
  // One stack capture, not two (the constructor's would be thrown away): it is paid on every call.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const e = new RangeError('');
  Error.stackTraceLimit = limit;
  Error.captureStackTrace?.(e, callerError);
  return e;
}

/** A RangeError found on the pool (e.g. out of memory), re-told with the caller's stack. */
export function withCallerStack(err: unknown, caller: RangeError): unknown {
  if (!(err instanceof RangeError)) return err;
  caller.message = err.message;
  return caller;
}
