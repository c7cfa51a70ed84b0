// The intermediates of a layer forward (projected q, k, v, the attention output, per-head weights),
// reused across calls instead of allocated per call. Nothing proportional to the input is allocated
// per call except the returned output (and weights).
//
// Scratch is shared by every layer of this thread (each Scratch grows to the largest call that
// used it), so a model of L layers holds one set of intermediates for its sync calls and at most
// MAX_SPARE_SCRATCH for its async ones, not L times that. Sync calls cannot overlap: one set
// serves them all. An async call owns its set from its start until it settles.
import { allocateF32 } from '../validate-buffer.js';

/** A Float32Array reused across calls, grown when a call needs more; `name` is for the error. */
class Scratch {
  #buf: Float32Array = new Float32Array(0);
  constructor(readonly name: string) {}
  take(n: number): Float32Array {
    if (this.#buf.length < n) this.#buf = allocateF32(this.name, n);
    return this.#buf.length === n ? this.#buf : this.#buf.subarray(0, n);
  }
}

/** The intermediates of one forward call. */
export class ScratchSet {
  readonly q = new Scratch('the projected q (B*S*H*Dh)');
  readonly k = new Scratch('the projected k (B*Sk*Hkv*Dh)');
  readonly v = new Scratch('the projected v (B*Sk*Hkv*Dh)');
  readonly attn = new Scratch('the attention output (B*S*H*Dh)');
  readonly weights = new Scratch('the per-head weights (B*H*S*Sk)');
}

/**
 * Most scratch sets kept for async calls. Reusing them instead of allocating four intermediates
 * per async call halves the call's synchronous part (bench/RESULTS.md).
 */
const MAX_SPARE_SCRATCH = 8;

/** The set every sync call of this thread uses. */
export const syncScratch = new ScratchSet();
const spareScratch: ScratchSet[] = [];

/** A set for one async call, its own until `giveBack`. */
export function takeSpare(): ScratchSet {
  return spareScratch.pop() ?? new ScratchSet();
}

/** An async call's scratch set, back for reuse once nothing reads or writes it any more. */
export function giveBack(set: ScratchSet): void {
  if (spareScratch.length < MAX_SPARE_SCRATCH) spareScratch.push(set);
}
