// How many async forward calls (without a cache) of one layer hold scratch and run at once: this
// many per pool thread; later ones wait, in order, holding only their arguments. A burst of N calls
// would otherwise allocate N sets of intermediates up front (1.5 MiB each for a BERT-base request
// of 128 tokens): memory that grows with the queue, and page faults on the event loop per call.
// Two per thread keep every thread busy while the next call is set up.
import { abortError, isAborted, watchAbort } from '../abort.js';

const MAX_ACTIVE_FACTOR = 2;

export class Admission {
  /** Calls started and not yet settled. */
  #active = 0;
  /** Calls waiting for one of them to settle, first in first out. */
  readonly #waiting: Array<() => void> = [];

  /** Threads of the backend, read per call: setThreads may change them. */
  readonly #threads: () => number;

  constructor(threads: () => number) {
    this.#threads = threads;
  }

  /**
   * Resolves when the call may take its scratch and run (at once while fewer than
   * MAX_ACTIVE_FACTOR × threads calls are active); the call then counts as active until `settled`.
   * An abort while waiting rejects at once with an AbortError and gives the place up.
   */
  admit(signal: AbortSignal | undefined): Promise<void> {
    // Only when nobody waits: a free place goes to the oldest waiter first (first in, first out).
    if (this.#waiting.length === 0 && this.#active < this.#limit()) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      if (signal && isAborted(signal)) return reject(abortError(signal));
      let unwatch = (): void => {};
      const go = (): void => {
        unwatch();
        this.#active++;
        resolve();
      };
      if (signal) {
        unwatch = watchAbort(signal, () => {
          const i = this.#waiting.indexOf(go);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(abortError(signal));
        });
      }
      this.#waiting.push(go);
    });
  }

  /**
   * An admitted call has settled: its place goes to the next waiting call, and to more than one
   * when setThreads raised the limit meanwhile.
   */
  settled(): void {
    this.#active--;
    while (this.#waiting.length > 0 && this.#active < this.#limit()) this.#waiting.shift()!();
  }

  #limit(): number {
    return MAX_ACTIVE_FACTOR * this.#threads();
  }
}
