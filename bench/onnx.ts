// ONNX graphs for the peer benchmark, built in memory at bench time: a minimal protobuf writer
// (the handful of onnx.proto fields used here) and the graphs for SDPA, the attention layer and
// SGEMM, as plain MatMul/Softmax/Add/Transpose/Reshape ops and as ONNX Runtime's fused
// com.microsoft operators. No dependency: the wire format needs ~40 lines.

// ---- protobuf wire format ---------------------------------------------------------------------
class Writer {
  private parts: Uint8Array[] = [];
  private varint(n: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(n));
    const bytes: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      bytes.push(b);
    } while (v);
    this.parts.push(Uint8Array.from(bytes));
  }
  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  int(field: number, n: number | bigint): this {
    this.key(field, 0);
    this.varint(n);
    return this;
  }
  float(field: number, x: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.parts.push(b);
    return this;
  }
  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(data.length);
    this.parts.push(data);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, m: Writer): this {
    return this.bytes(field, m.finish());
  }
  finish(): Uint8Array {
    const n = this.parts.reduce((s, p) => s + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

// ---- onnx.proto messages (field numbers from onnx/onnx.proto) ---------------------------------
const FLOAT = 1;
const INT64 = 7;
type Attr = number | number[] | { f: number };

function attribute(name: string, value: Attr): Writer {
  const a = new Writer().string(1, name);
  if (typeof value === 'number') return a.int(3, value).int(20, 2); // i, type INT
  if (Array.isArray(value)) {
    for (const v of value) a.int(8, v); // ints (unpacked is valid for repeated int64)
    return a.int(20, 7); // INTS
  }
  return a.float(2, value.f).int(20, 1); // f, FLOAT
}

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, Attr>;
  domain?: string;
}

function node(n: OnnxNode, i: number): Writer {
  const w = new Writer();
  for (const x of n.inputs) w.string(1, x);
  for (const y of n.outputs) w.string(2, y);
  w.string(3, `${n.op}_${i}`).string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs ?? {})) w.message(5, attribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function valueInfo(name: string, dims: number[]): Writer {
  const shape = new Writer();
  for (const d of dims) shape.message(1, new Writer().int(1, d));
  const tensorType = new Writer().int(1, FLOAT).message(2, shape);
  return new Writer().string(1, name).message(2, new Writer().message(1, tensorType));
}

export type Initializer = { name: string; dims: number[]; data: Float32Array } | { name: string; dims: number[]; int64: number[] };

function tensor(t: Initializer): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  if ('data' in t) {
    w.int(2, FLOAT).string(8, t.name);
    return w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  const raw = new BigInt64Array(t.int64.map(BigInt));
  return w.int(2, INT64).string(8, t.name).bytes(9, new Uint8Array(raw.buffer));
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  inputs: Array<{ name: string; dims: number[] }>;
  outputs: Array<{ name: string; dims: number[] }>;
  initializers?: Initializer[];
}

/** A ModelProto (IR 8, opset 17, plus com.microsoft 1 when a node uses it). */
export function modelBytes(g: OnnxGraph): Uint8Array {
  const graph = new Writer();
  g.nodes.forEach((n, i) => graph.message(1, node(n, i)));
  graph.string(2, 'qkv_bench');
  for (const t of g.initializers ?? []) graph.message(5, tensor(t));
  for (const x of g.inputs) graph.message(11, valueInfo(x.name, x.dims));
  for (const y of g.outputs) graph.message(12, valueInfo(y.name, y.dims));
  const model = new Writer().int(1, 8).string(2, 'qkv-bench').message(7, graph);
  model.message(8, new Writer().string(1, '').int(2, 17));
  if (g.nodes.some((n) => n.domain === 'com.microsoft')) model.message(8, new Writer().string(1, 'com.microsoft').int(2, 1));
  return model.finish();
}

// ---- the graphs ---------------------------------------------------------------------------------
/** A [Sq, Sk] additive mask: 0 where key j ≤ offset + i (bottom-right causal), else −∞. */
export function causalMask(Sq: number, Sk: number): Float32Array {
  const m = new Float32Array(Sq * Sk);
  const offset = Sk - Sq;
  for (let i = 0; i < Sq; i++) for (let j = offset + i + 1; j < Sk; j++) m[i * Sk + j] = -Infinity;
  return m;
}

/** softmax(scale·q·kᵀ [+ mask])·v with q [B,H,Sq,D], k, v [B,H,Sk,D] (bhsd), out [B,H,Sq,D]. */
export function sdpaPlain(B: number, H: number, Sq: number, Sk: number, D: number, causal: boolean): OnnxGraph {
  const nodes: OnnxNode[] = [
    { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: [0, 1, 3, 2] } },
    { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['qk'] },
    { op: 'Mul', inputs: ['qk', 'scale'], outputs: ['s'] },
  ];
  const initializers: Initializer[] = [{ name: 'scale', dims: [], data: Float32Array.of(1 / Math.sqrt(D)) }];
  let scores = 's';
  if (causal) {
    nodes.push({ op: 'Add', inputs: ['s', 'mask'], outputs: ['sm'] });
    initializers.push({ name: 'mask', dims: [Sq, Sk], data: causalMask(Sq, Sk) });
    scores = 'sm';
  }
  nodes.push(
    { op: 'Softmax', inputs: [scores], outputs: ['p'], attrs: { axis: -1 } },
    { op: 'MatMul', inputs: ['p', 'v'], outputs: ['out'] },
  );
  return {
    nodes, initializers,
    inputs: [{ name: 'q', dims: [B, H, Sq, D] }, { name: 'k', dims: [B, H, Sk, D] }, { name: 'v', dims: [B, H, Sk, D] }],
    outputs: [{ name: 'out', dims: [B, H, Sq, D] }],
  };
}

/**
 * The same with ONNX Runtime's fused com.microsoft MultiHeadAttention: q [B,Sq,H·D], k, v
 * [B,Sk,H·D] (bshd), out [B,Sq,H·D]. `unidirectional` is its causal switch.
 */
export function sdpaFused(B: number, H: number, Sq: number, Sk: number, D: number, causal: boolean): OnnxGraph {
  return {
    nodes: [{
      op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: ['q', 'k', 'v'], outputs: ['out'],
      attrs: { num_heads: H, scale: { f: 1 / Math.sqrt(D) }, ...(causal ? { unidirectional: 1 } : {}) },
    }],
    inputs: [{ name: 'q', dims: [B, Sq, H * D] }, { name: 'k', dims: [B, Sk, H * D] }, { name: 'v', dims: [B, Sk, H * D] }],
    outputs: [{ name: 'out', dims: [B, Sq, H * D] }],
  };
}

/** y [M, N] = x [M, K] · wt, wt = Wᵀ [K, N] a constant (ONNX Runtime prepacks it, as Linear does). */
export function gemmPlain(M: number, N: number, K: number, wt: Float32Array): OnnxGraph {
  return {
    nodes: [{ op: 'MatMul', inputs: ['x', 'wt'], outputs: ['y'] }],
    initializers: [{ name: 'wt', dims: [K, N], data: wt }],
    inputs: [{ name: 'x', dims: [M, K] }],
    outputs: [{ name: 'y', dims: [M, N] }],
  };
}

/** Layer weights in 'in-out' form ([in, out]): y = x·W + b. */
export interface LayerWeightsT { wq: Float32Array; wk: Float32Array; wv: Float32Array; wo: Float32Array; bq: Float32Array; bk: Float32Array; bv: Float32Array; bo: Float32Array }

/** The attention layer (H = Hkv, Dh = E/H) as plain ops: x [B,S,E] → [B,S,E]. */
export function layerPlain(B: number, S: number, E: number, H: number, w: LayerWeightsT, causal: boolean): OnnxGraph {
  const Dh = E / H;
  const nodes: OnnxNode[] = [];
  for (const n of ['q', 'k', 'v']) {
    nodes.push(
      { op: 'MatMul', inputs: ['x', `w${n}`], outputs: [`${n}0`] },
      { op: 'Add', inputs: [`${n}0`, `b${n}`], outputs: [`${n}1`] },
      { op: 'Reshape', inputs: [`${n}1`, 'split'], outputs: [`${n}2`] },
      // q, v → [B,H,S,Dh]; k → [B,H,Dh,S] (already transposed for q·kᵀ)
      { op: 'Transpose', inputs: [`${n}2`], outputs: [`${n}h`], attrs: { perm: n === 'k' ? [0, 2, 3, 1] : [0, 2, 1, 3] } },
    );
  }
  nodes.push(
    { op: 'MatMul', inputs: ['qh', 'kh'], outputs: ['qk'] },
    { op: 'Mul', inputs: ['qk', 'scale'], outputs: ['s'] },
  );
  const initializers: Initializer[] = [
    { name: 'wq', dims: [E, E], data: w.wq }, { name: 'wk', dims: [E, E], data: w.wk },
    { name: 'wv', dims: [E, E], data: w.wv }, { name: 'wo', dims: [E, E], data: w.wo },
    { name: 'bq', dims: [E], data: w.bq }, { name: 'bk', dims: [E], data: w.bk },
    { name: 'bv', dims: [E], data: w.bv }, { name: 'bo', dims: [E], data: w.bo },
    { name: 'split', dims: [4], int64: [B, S, H, Dh] }, { name: 'merge', dims: [3], int64: [B, S, E] },
    { name: 'scale', dims: [], data: Float32Array.of(1 / Math.sqrt(Dh)) },
  ];
  let scores = 's';
  if (causal) {
    nodes.push({ op: 'Add', inputs: ['s', 'mask'], outputs: ['sm'] });
    initializers.push({ name: 'mask', dims: [S, S], data: causalMask(S, S) });
    scores = 'sm';
  }
  nodes.push(
    { op: 'Softmax', inputs: [scores], outputs: ['p'], attrs: { axis: -1 } },
    { op: 'MatMul', inputs: ['p', 'vh'], outputs: ['ctx'] },
    { op: 'Transpose', inputs: ['ctx'], outputs: ['ctxT'], attrs: { perm: [0, 2, 1, 3] } },
    { op: 'Reshape', inputs: ['ctxT', 'merge'], outputs: ['ctx2'] },
    { op: 'MatMul', inputs: ['ctx2', 'wo'], outputs: ['y0'] },
    { op: 'Add', inputs: ['y0', 'bo'], outputs: ['y'] },
  );
  return { nodes, initializers, inputs: [{ name: 'x', dims: [B, S, E] }], outputs: [{ name: 'y', dims: [B, S, E] }] };
}

/**
 * The layer with ONNX Runtime's fused com.microsoft Attention (Q, K, V projections and attention
 * in one op; weights [E, 3E], bias [3E]) followed by the output projection.
 */
export function layerFused(B: number, S: number, E: number, H: number, w: LayerWeightsT, causal: boolean): OnnxGraph {
  const qkvW = new Float32Array(E * 3 * E);
  for (let i = 0; i < E; i++) {
    qkvW.set(w.wq.subarray(i * E, (i + 1) * E), i * 3 * E);
    qkvW.set(w.wk.subarray(i * E, (i + 1) * E), i * 3 * E + E);
    qkvW.set(w.wv.subarray(i * E, (i + 1) * E), i * 3 * E + 2 * E);
  }
  const qkvB = new Float32Array(3 * E);
  qkvB.set(w.bq, 0);
  qkvB.set(w.bk, E);
  qkvB.set(w.bv, 2 * E);
  return {
    nodes: [
      { op: 'Attention', domain: 'com.microsoft', inputs: ['x', 'wqkv', 'bqkv'], outputs: ['ctx'], attrs: { num_heads: H, ...(causal ? { unidirectional: 1 } : {}) } },
      { op: 'MatMul', inputs: ['ctx', 'wo'], outputs: ['y0'] },
      { op: 'Add', inputs: ['y0', 'bo'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'wqkv', dims: [E, 3 * E], data: qkvW }, { name: 'bqkv', dims: [3 * E], data: qkvB },
      { name: 'wo', dims: [E, E], data: w.wo }, { name: 'bo', dims: [E], data: w.bo },
    ],
    inputs: [{ name: 'x', dims: [B, S, E] }],
    outputs: [{ name: 'y', dims: [B, S, E] }],
  };
}
