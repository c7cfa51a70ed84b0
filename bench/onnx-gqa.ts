// ONNX Runtime's com.microsoft GroupQueryAttention as a one-node graph, the peer of qkv's score
// modifiers in bench/modifiers.ts: the `local_window_size` attribute is its sliding window and the
// optional `head_sink` input (index 11) its per-head attention sink. Built with bench/onnx.ts's writer.
//
// What the operator takes (docs/ContribOperators.md, contrib_ops/cpu/bert; the window and causal
// rules below are onnxruntime-node 1.30's, found by comparing its outputs with qkv's):
//   - query [B, Sq, H·D] and key, value [B, Sq, Hkv·D] (bshd, heads flattened): the new tokens;
//   - past_key, past_value [B, Hkv, Sk − Sq, D] (bhsd): the cache before this call, optional;
//   - seqlens_k [B] int32 = Sk − 1 and total_sequence_length, a scalar int32 = Sk. A call with
//     Sq = Sk is a first prompt: row i sees keys 0 … i. Otherwise its Sq rows follow the Sk − Sq
//     cached keys: row i sees keys 0 … Sk − Sq + i. Both are qkv's `causal: true` (bottom-right);
//     the operator has no non-causal mode.
//   - local_window_size w: row i sees only its last w keys, itself included — HF's sliding_window
//     W = w, qkv's `window: { left: w − 1 }`. (The schema calls it a left window size; older
//     kernels kept w + 1 keys.) −1, the default, is none.
//   - head_sink [H]: e^(sink_h) joins the softmax's denominator, as qkv's `sinks` (gpt-oss).
//   - do_rotary stays 0 (no RoPE); scale defaults to 1/√D.
// The outputs are out [B, Sq, H·D] and present_key, present_value [B, Hkv, Sk, D] (past with the
// new tokens appended; the operator always writes them). When present and past are the same
// buffer (the caller binds the outputs onto the inputs) the new tokens are written in place and
// the cache is not copied: the past inputs are then the buffer's full length Sk, with seqlens_k
// saying how much of it is filled.
import type { OnnxGraph, OnnxNode } from './onnx.js';

const INT32 = 6; // onnx TensorProto.DataType

export interface GqaShape {
  B: number;
  H: number;
  Hkv: number;
  /** New tokens in this call. */
  Sq: number;
  /** Keys after this call: the cached Sk − Sq and the Sq new ones (Sk = Sq for a prompt). */
  Sk: number;
  D: number;
}

export interface GqaModifiers {
  /** local_window_size: keys each row sees, itself included (qkv's window.left + 1); omitted or −1: none. */
  localWindow?: number;
  /** head_sink [H], one logit per query head. */
  sinks?: Float32Array;
  /**
   * The present cache is the past buffer itself ([B, Hkv, Sk, D], the new tokens written at its
   * end): the graph's past inputs are that long, and the caller passes the same tensors as the
   * present_key / present_value fetches.
   */
  sharedCache?: boolean;
}

/** GroupQueryAttention over q, k, v (and past_key, past_value when Sk > Sq). */
export function gqaGraph(s: GqaShape, m: GqaModifiers = {}): OnnxGraph {
  const { B, H, Hkv, Sq, Sk, D } = s;
  if (!(Sk >= Sq)) throw new RangeError(`Sk (${Sk}) must be at least Sq (${Sq})`);
  if (m.sharedCache && Sk === Sq) throw new RangeError('a shared cache needs cached keys (Sk > Sq)');
  // seqlens_k and total_sequence_length are int32; the writer's inputs and initializers are float
  // or int64, so they are int64 constants cast to int32 (folded when the session is created).
  const nodes: OnnxNode[] = [
    { op: 'Cast', inputs: ['seqlens_k64'], outputs: ['seqlens_k'], attrs: { to: INT32 } },
    { op: 'Cast', inputs: ['total64'], outputs: ['total'], attrs: { to: INT32 } },
  ];
  const hasPast = Sk > Sq;
  const pastLen = m.sharedCache ? Sk : Sk - Sq;
  const inputs = [
    'q', 'k', 'v', hasPast ? 'past_key' : '', hasPast ? 'past_value' : '', 'seqlens_k', 'total',
    '', '', '', '', // cos_cache, sin_cache, position_ids, attention_bias
    m.sinks ? 'head_sink' : '',
  ];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  nodes.push({
    op: 'GroupQueryAttention', domain: 'com.microsoft', inputs, outputs: ['out', 'present_key', 'present_value'],
    attrs: { num_heads: H, kv_num_heads: Hkv, do_rotary: 0, ...(m.localWindow !== undefined && m.localWindow >= 0 ? { local_window_size: m.localWindow } : {}) },
  });
  const graphInputs = [{ name: 'q', dims: [B, Sq, H * D] }, { name: 'k', dims: [B, Sq, Hkv * D] }, { name: 'v', dims: [B, Sq, Hkv * D] }];
  if (hasPast) graphInputs.push({ name: 'past_key', dims: [B, Hkv, pastLen, D] }, { name: 'past_value', dims: [B, Hkv, pastLen, D] });
  const outputs = [{ name: 'out', dims: [B, Sq, H * D] }];
  if (m.sharedCache) outputs.push({ name: 'present_key', dims: [B, Hkv, Sk, D] }, { name: 'present_value', dims: [B, Hkv, Sk, D] });
  return {
    nodes,
    inputs: graphInputs,
    outputs,
    initializers: [
      { name: 'seqlens_k64', dims: [B], int64: Array.from({ length: B }, () => Sk - 1) },
      { name: 'total64', dims: [], int64: [Sk] },
      ...(m.sinks ? [{ name: 'head_sink', dims: [H], data: m.sinks }] : []),
    ],
  };
}

/** x [n0, n1, n2, D] → [n0, n2, n1, D]: bhsd ↔ bshd ([B, H, S, D] ↔ [B, S, H, D], either way). */
export function swapMiddle(x: Float32Array, n0: number, n1: number, n2: number, D: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let a = 0; a < n0; a++) {
    for (let b = 0; b < n1; b++) {
      for (let c = 0; c < n2; c++) {
        const from = ((a * n1 + b) * n2 + c) * D;
        y.set(x.subarray(from, from + D), ((a * n2 + c) * n1 + b) * D);
      }
    }
  }
  return y;
}
