#!/usr/bin/env node
// qkv explain "I like apple" [--compare "apple makes phones"] — self-attention, step by step, on
// whichever backend is active. qkv info — the backend in use and why. qkv --version — the version.
import { readFileSync } from 'node:fs';

const E = 8; // embedding width
const D = 4; // query/key/value width (one head)

const HELP = `Usage:
  qkv explain ["a sentence"] [--compare "another sentence"]
      Embeds the words, projects them to Q, K and V with fixed weights, and shows the scaled
      scores, the attention weights (a heatmap) and the outputs. With no sentence: "I like apple"
      compared with "apple makes phones".
  qkv info
      Which backend is active (native SIMD addon or TypeScript) and why.
  qkv --version, -v
      The version of the qkv package.
Environment: NO_COLOR=1 prints plain numbers; QKV_BACKEND=js|native picks the backend.`;

// ---- deterministic numbers -------------------------------------------------------------------
/** FNV-1a over the UTF-16 code units: the seed of a word's embedding. */
function hash(word) {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) {
    h ^= word.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
/** mulberry32: a small seeded PRNG; values in [-1, 1), rounded to 2 decimals so they read well. */
function seeded(seed, n) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = Math.round((2 * u - 1) * 100) / 100;
  }
  return out;
}
const embed = (word) => seeded(hash(word.toLowerCase()), E);
// The "trained" weights: fixed once, shared by every sentence. [out, in] = [D, E] (PyTorch nn.Linear).
const Wq = seeded(1, D * E);
const Wk = seeded(2, D * E);
const Wv = seeded(3, D * E);

// ---- printing ----------------------------------------------------------------------------------
const color = process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
const out = (s = '') => process.stdout.write(`${s}\n`);
const bold = (s) => (color ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s) => (color ? `\x1b[2m${s}\x1b[0m` : s);
const num = (x, w = 6, p = 2) => x.toFixed(p).padStart(w);

/** ANSI 256-colour background for t in [0, 1]: dark blue → yellow, through the 6×6×6 cube. */
function heat(t, text) {
  if (!color) return text;
  const ramp = [17, 18, 19, 20, 25, 31, 37, 72, 107, 142, 178, 214, 220, 226];
  const c = ramp[Math.max(0, Math.min(ramp.length - 1, Math.round(t * (ramp.length - 1))))];
  const fg = t > 0.55 ? 16 : 231;
  return `\x1b[48;5;${c}m\x1b[38;5;${fg}m${text}\x1b[0m`;
}

function matrix(title, rowNames, m, cols, { colNames, heatmap = false, sums = false, p = 2, range } = {}) {
  out(bold(title));
  const w = Math.max(...rowNames.map((r) => r.length));
  const cw = Math.max(7, ...(colNames ?? []).map((c) => c.length + 1));
  if (colNames) out(`  ${''.padEnd(w)} ${colNames.map((c) => c.padStart(cw)).join('')}`);
  const rows = rowNames.length;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < rows * cols; i++) if (Number.isFinite(m[i])) { lo = Math.min(lo, m[i]); hi = Math.max(hi, m[i]); }
  if (range) [lo, hi] = range; // weights: colour on the absolute 0..1 scale
  for (let r = 0; r < rows; r++) {
    let line = `  ${rowNames[r].padEnd(w)} `;
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      const x = m[r * cols + c];
      sum += x;
      const cell = num(x, cw, p);
      line += heatmap ? heat(hi > lo ? (x - lo) / (hi - lo) : 0.5, cell) : cell;
    }
    if (sums) line += `   ${dim('row sum')} ${sum.toFixed(3)}`;
    out(line);
  }
  out();
}

function words(sentence) {
  const ws = sentence.split(/\s+/).map((w) => w.replace(/[^\p{L}\p{N}'-]/gu, '')).filter(Boolean);
  if (ws.length === 0) throw new Error(`qkv explain: no words in ${JSON.stringify(sentence)}`);
  return ws;
}

/** One sentence through one attention head on the active backend. */
function attend(sentence) {
  const ws = words(sentence);
  const S = ws.length;
  const X = new Float32Array(S * E);
  ws.forEach((w, i) => X.set(embed(w), i * E));
  const opts = { inFeatures: E, outFeatures: D };
  const Q = linear(X, Wq, opts);
  const K = linear(X, Wk, opts);
  const V = linear(X, Wv, opts);
  const { output, weights, scores } = scaledDotProductAttention(Q, K, V, {
    heads: 1, seqQ: S, headDim: D, weights: true, scores: true,
  });
  return { ws, S, X, Q, K, V, scores, weights, output };
}

function explain(sentence, verbose) {
  const r = attend(sentence);
  const dims = (n) => Array.from({ length: n }, (_, i) => `d${i}`);
  out(bold(`"${sentence}"`) + dim(`  (${r.S} tokens, embedding width E=${E}, one head of width d=${D})`));
  out();
  if (verbose) {
    out(dim('1. Each word is looked up in a fixed embedding table (here: a seeded hash of the word).'));
    matrix('X (embeddings) [tokens × E]', r.ws, r.X, E, { colNames: dims(E) });
    out(dim(`2. Three weight matrices Wq, Wk, Wv [${D} × ${E}] were fixed when the model was trained;`));
    out(dim('   they are the same for every sentence. Q = X·Wqᵀ, K = X·Wkᵀ, V = X·Wvᵀ are recomputed'));
    out(dim('   for every sentence: each row comes from that word\'s own embedding only.'));
  }
  matrix('Q (queries: what each word looks for)', r.ws, r.Q, D, { colNames: dims(D) });
  matrix('K (keys: what each word offers to be found by)', r.ws, r.K, D, { colNames: dims(D) });
  matrix('V (values: what each word passes on)', r.ws, r.V, D, { colNames: dims(D) });
  if (verbose) out(dim(`3. Scores = Q·Kᵀ / √d (d = ${D}, so divided by ${Math.sqrt(D)}): how well word i's query matches word j's key.`));
  matrix('scaled scores Q·Kᵀ/√d [query × key]', r.ws, r.scores, r.S, { colNames: r.ws, heatmap: true });
  if (verbose) out(dim('4. Softmax along each row turns scores into attention weights: positive, each row sums to 1.'));
  matrix('attention weights softmax(scores) [query × key]', r.ws, r.weights, r.S, { colNames: r.ws, heatmap: true, sums: true, p: 3, range: [0, 1] });
  if (verbose) out(dim('5. Each word\'s output is the weighted average of the value rows: weights · V.'));
  matrix('output = weights · V', r.ws, r.output, D, { colNames: dims(D) });
  return r;
}

function compare(a, b) {
  // Words are matched as the embedding sees them: case-insensitively ("Apple" is "apple").
  const key = (w) => w.toLowerCase();
  const shared = [];
  a.ws.forEach((w, i) => {
    const j = b.ws.findIndex((x) => key(x) === key(w));
    if (j >= 0 && !shared.some((s) => key(s.w) === key(w))) shared.push({ w, i, j });
  });
  out(bold('The same word in two sentences'));
  if (shared.length === 0) {
    out('  (no word appears in both sentences)');
    return;
  }
  const row = (m, i, n) => Array.from(m.subarray(i * n, (i + 1) * n), (x) => num(x)).join('');
  for (const { w, i, j } of shared) {
    const same = (m1, m2) => row(m1, i, D) === row(m2, j, D);
    const label = b.ws[j] === w ? `"${w}"` : `"${w}" / "${b.ws[j]}"`;
    out(`  ${label} — its own q, k, v (one layer: they depend only on its embedding and the fixed weights):`);
    for (const [name, ma, mb] of [['q', a.Q, b.Q], ['k', a.K, b.K], ['v', a.V, b.V]]) {
      out(`    ${name}  ${row(ma, i, D)}   ${same(ma, mb) ? 'identical in both sentences' : 'DIFFERENT'}`);
    }
    out(`  what changes is whom it attends to, and so its output:`);
    const wa = Array.from(a.weights.subarray(i * a.S, (i + 1) * a.S), (x, k) => `${a.ws[k]} ${x.toFixed(3)}`).join(', ');
    const wb = Array.from(b.weights.subarray(j * b.S, (j + 1) * b.S), (x, k) => `${b.ws[k]} ${x.toFixed(3)}`).join(', ');
    const na = `"${a.ws.join(' ')}"`, nb = `"${b.ws.join(' ')}"`;
    const lw = Math.max(na.length, nb.length);
    out(`    weights in ${na.padEnd(lw)}  ${wa}`);
    out(`    weights in ${nb.padEnd(lw)}  ${wb}`);
    out(`    output  in ${na.padEnd(lw)} ${row(a.output, i, D)}`);
    out(`    output  in ${nb.padEnd(lw)} ${row(b.output, j, D)}`);
  }
  const names = new Intl.ListFormat('en', { type: 'conjunction' }).format(shared.map((s) => `"${s.w}"`));
  out();
  out(dim('  In a deeper model the next layer takes these outputs as its input, so from the second'));
  out(dim(`  layer on the q, k and v of ${names} differ too: context has been mixed in.`));
}

function backendLine() {
  const i = info();
  const where = i.backend === 'native' ? `native addon, ${i.simd} kernels, ${i.threads} thread(s)` : 'TypeScript kernels';
  return `qkv ${i.version} — backend: ${i.backend} (${where})${i.nativeError ? `\n  ${i.nativeError}` : ''}`;
}

// ---- command line ------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const cmd = argv[0];
if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
  out(HELP);
  process.exit(cmd ? 0 : 1);
}
if (cmd === '--version' || cmd === '-v') {
  out(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
  process.exit(0);
}
// Loaded after the options that do not need it, so --help and --version work without dist/.
const { info, linear, scaledDotProductAttention } = await import('../dist/index.js');
if (cmd === 'info') {
  out(backendLine());
} else if (cmd === 'explain') {
  const rest = argv.slice(1);
  let other;
  const ci = rest.indexOf('--compare');
  if (ci >= 0) {
    other = rest[ci + 1];
    if (!other) {
      console.error('qkv explain: --compare needs a sentence');
      process.exit(2);
    }
    rest.splice(ci, 2);
  }
  const sentence = rest.join(' ').trim() || 'I like apple';
  if (other === undefined && /^i like apple$/i.test(sentence)) other = 'apple makes phones';
  out(backendLine());
  out();
  const a = explain(sentence, true);
  if (other !== undefined) {
    out('─'.repeat(72));
    out();
    const b = explain(other, false);
    compare(a, b);
  }
} else {
  console.error(`qkv: unknown command '${cmd}'\n\n${HELP}`);
  process.exit(2);
}
