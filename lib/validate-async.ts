// The errors of the ...Async functions: the AbortSignal check and contract (an aborted signal
// rejects a call that has not started with an AbortError and leaves `out` untouched), and errors
// found on the pool re-told with the caller's stack.
import { typeError } from './validate.js';

/** The DOMException every abort rejects with, its cause the signal's reason. */
export function abortError(signal: AbortSignal): DOMException {
  const e = new DOMException('The operation was aborted', 'AbortError');
  Object.defineProperty(e, 'cause', { value: signal.reason, configurable: true, writable: true });
  return e;
}

export function expectSignal(name: string, v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw typeError(name, 'an AbortSignal', v);
  return v;
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
