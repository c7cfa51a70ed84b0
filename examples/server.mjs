// A small HTTP server that runs one attention layer per request off the event loop.
//   node examples/server.mjs            then: curl 'http://127.0.0.1:8080/attend?tokens=128'
// PORT sets the port (0 = any free one); the server prints its address on its first line.
import http from 'node:http';
import { MultiHeadAttention, info } from 'qkv';

const E = 256;
const H = 8;
const random = (n, scale) => Float32Array.from({ length: n }, () => (Math.random() - 0.5) * scale);
// Weights are fixed after training; here they are random but built (and packed) once, at start-up.
const layer = new MultiHeadAttention({
  embedDim: E,
  numHeads: H,
  weights: {
    inProjWeight: random(3 * E * E, 0.1),
    inProjBias: random(3 * E, 0.01),
    outProjWeight: random(E * E, 0.1),
    outProjBias: random(E, 0.01),
  },
});

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname !== '/attend') {
    res.writeHead(404).end();
    return;
  }
  const tokens = Number(url.searchParams.get('tokens') ?? 128);
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > 4096) {
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'tokens must be 1..4096' }));
    return;
  }
  // A client that disconnects cancels its call if it has not started yet.
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  const x = random(tokens * E, 1); // the request's token embeddings [1, tokens, E]
  const t0 = performance.now();
  try {
    const y = await layer.forwardAsync(x, { causal: true, signal: controller.signal });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ tokens, ms: +(performance.now() - t0).toFixed(2), first: Array.from(y.subarray(0, 4)) }));
  } catch (err) {
    if (err.name !== 'AbortError') res.writeHead(500).end(String(err));
  }
});

server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  const { port } = server.address();
  const i = info();
  console.log(`listening on http://127.0.0.1:${port} (qkv ${i.backend}/${i.simd}, ${i.threads} threads)`);
});
