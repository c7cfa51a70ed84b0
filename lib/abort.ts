// AbortSignals as the ...Async functions use them: read through the intrinsic getters and listened
// to through the intrinsic EventTarget methods, so a signal whose own `aborted` getter,
// `addEventListener` or `removeEventListener` was replaced (or throws) cannot keep a call from
// settling. Every call on one signal shares a single listener: a thousand concurrent calls with
// one signal add one listener, not a thousand (no MaxListenersExceededWarning).
const abortedGetter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;
const reasonGetter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')!.get!;
const addListener = EventTarget.prototype.addEventListener;
const removeListener = EventTarget.prototype.removeEventListener;

/**
 * Whether the signal has aborted. Throws (a TypeError from the getter) only for an object that is
 * not a real AbortSignal, which validate-async.ts's expectSignal turns away before any call starts.
 */
export function isAborted(signal: AbortSignal): boolean {
  return abortedGetter.call(signal) as boolean;
}

/** The DOMException every abort rejects with, its cause the signal's reason. */
export function abortError(signal: AbortSignal): DOMException {
  const e = new DOMException('The operation was aborted', 'AbortError');
  Object.defineProperty(e, 'cause', { value: reasonGetter.call(signal), configurable: true, writable: true });
  return e;
}

/** What each watched signal runs when it aborts; its single listener is `dispatch`. */
const watchers = new WeakMap<AbortSignal, { callbacks: Set<() => void>; dispatch: () => void }>();

/**
 * Runs `fn` once when `signal` aborts (call it only for a signal that has not aborted yet).
 * Returns the function that stops watching; calling it after the abort, or twice, does nothing.
 */
export function watchAbort(signal: AbortSignal, fn: () => void): () => void {
  let entry = watchers.get(signal);
  if (entry === undefined) {
    const callbacks = new Set<() => void>();
    const dispatch = (): void => {
      watchers.delete(signal);
      for (const cb of callbacks) cb();
      callbacks.clear();
    };
    entry = { callbacks, dispatch };
    watchers.set(signal, entry);
    addListener.call(signal, 'abort', dispatch, { once: true });
  }
  const { callbacks, dispatch } = entry;
  // A fresh function per watch: the same `fn` watched twice is two watches.
  const watch = (): void => fn();
  callbacks.add(watch);
  return () => {
    if (!callbacks.delete(watch) || callbacks.size > 0 || watchers.get(signal)?.dispatch !== dispatch) return;
    watchers.delete(signal);
    removeListener.call(signal, 'abort', dispatch);
  };
}
