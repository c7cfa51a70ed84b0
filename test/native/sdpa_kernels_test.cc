// Standalone test of the native SDPA kernels (no Node): AttentionForward on every kernel set this
// machine can run (scalar, avx2 and avx512, or scalar and neon), against a float64 naive reference.
//
//   sdpa_kernels_test            run the grid, print "N passed, N failed", exit 1 on any failure
//   sdpa_kernels_test --bench    time B=1 H=8 Sq=Sk=4096 D=Dv=64 (causal and not), the per-call
//                                overhead of a tiny call, and this machine's AVX2 FMA peak
//
// Tolerance per element: |got - ref| <= atol + rtol |ref| with atol = 1e-5, rtol = 1e-4 (inputs of
// unit scale); -inf and NaN must match exactly. Outputs start as NaN so an unwritten element fails.
//
// float16 K/V (kv_dtype = kF16): the same cases with k and v rounded to binary16 here; the
// reference reads the very same halves (decoded by HalfBitsToDouble below, independent of the
// kernels' conversion), so the tolerance stays the fp32 one: only the kernels' fp32 arithmetic is
// measured, not the rounding to half. Plus a decode check: every one of the 65536 halves as a value
// row (Sk = 1, so out = 1 * v exactly) must come out as the exact half value.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "attention.h"
#include "dispatch.h"
#include "thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using qkv::AttnArgs;
using qkv::Layout;
using qkv::MaskKind;

namespace {

constexpr float kInf = INFINITY;

struct Case {
  std::string name;
  int64_t B = 1, H = 4, Hkv = 4, Sq = 7, Sk = 13, D = 8, Dv = 8;
  Layout layout = Layout::kBHSD;
  float scale = 0.0f;  // 0 = 1/sqrt(D)
  float softcap = 0.0f;
  bool causal = false;
  std::vector<int32_t> offsets;     // [B] when causal
  std::vector<int32_t> kv_lengths;  // [B] or empty
  MaskKind mask_kind = MaskKind::kNone;
  int64_t mask_dims[4] = {1, 1, 1, 1};  // each 1 or the full size of (B, H, Sq, Sk)
  float mask_inf_rate = 0.1f;           // fraction of blocking mask entries
  bool want_scores = false, want_weights = false;
  float input_scale = 1.0f;  // multiply q (scores of magnitude ~input_scale)
  double tol_mult = 1.0;
  uint32_t seed = 1;
  // Special setups applied after the random fill.
  bool full_row_masked = false;  // query row (0, 0, Sq-1) gets a float mask of -inf everywhere
  bool inf_score_masked = false; // row (0, 0, 0): score +inf on a masked key, -inf elsewhere
  bool f16 = false;  // k and v as IEEE binary16 (kv_dtype = kF16)
  // Score modifiers (DESIGN.md "Positions and score modifiers"); offsets then hold the positions
  // of row 0 even when the case is not causal.
  int64_t window_left = -1, window_right = -1;  // -1: unbounded
  std::vector<float> sinks;  // [H] or empty
  std::vector<float> alibi;  // [H] or empty
  bool want_lse = false;
};

// float -> binary16 bits, round to nearest even; overflow -> +-inf; NaN -> a quiet NaN.
uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u;
  if (ax >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520: rounds to inf
  if (ax < 0x38800000u) {                          // below 2^-14: subnormal half (or 0)
    const float a = std::fabs(f) * 16777216.0f;     // in units of 2^-24, exact (a power of 2 scale)
    return sign | static_cast<uint16_t>(std::nearbyint(a));  // default rounding mode: ties to even
  }
  const uint32_t rounded = ax + 0xfffu + ((ax >> 13) & 1u);  // RNE at bit 13
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

// binary16 bits -> value, by the definition (not by bit tricks like the kernels).
double HalfBitsToDouble(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const double sgn = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 31) return m == 0 ? sgn * INFINITY : NAN;
  if (e == 0) return sgn * std::ldexp(static_cast<double>(m), -24);
  return sgn * std::ldexp(1.0 + m / 1024.0, e - 15);
}

struct Tensors {
  std::vector<float> q, k, v;
  std::vector<float> fmask;
  std::vector<uint8_t> bmask;
  int64_t mask_strides[4] = {0, 0, 0, 0};
};

int64_t MaskIndex(const Tensors& t, int64_t b, int64_t h, int64_t i, int64_t j) {
  return b * t.mask_strides[0] + h * t.mask_strides[1] + i * t.mask_strides[2] + j * t.mask_strides[3];
}

Tensors MakeInputs(const Case& c) {
  std::mt19937 rng(c.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unif(0.0f, 1.0f);
  Tensors t;
  t.q.resize(c.B * c.H * c.Sq * c.D);
  t.k.resize(c.B * c.Hkv * c.Sk * c.D);
  t.v.resize(c.B * c.Hkv * c.Sk * c.Dv);
  for (float& x : t.q) x = normal(rng) * c.input_scale;
  for (float& x : t.k) x = normal(rng);
  for (float& x : t.v) x = normal(rng);
  if (c.mask_kind != MaskKind::kNone) {
    const int64_t full[4] = {c.B, c.H, c.Sq, c.Sk};
    int64_t stride = 1, n = 1;
    for (int d = 3; d >= 0; --d) {
      t.mask_strides[d] = c.mask_dims[d] == 1 ? 0 : stride;
      if (c.mask_dims[d] != 1 && c.mask_dims[d] != full[d]) std::abort();
      stride *= c.mask_dims[d];
      n *= c.mask_dims[d];
    }
    if (c.mask_kind == MaskKind::kFloat) {
      t.fmask.resize(n);
      for (float& x : t.fmask) x = unif(rng) < c.mask_inf_rate ? -kInf : normal(rng);
    } else {
      t.bmask.resize(n);
      for (uint8_t& x : t.bmask) x = unif(rng) < c.mask_inf_rate ? 0 : static_cast<uint8_t>(1 + rng() % 255);
    }
  }
  return t;
}

qkv::TensorStrides Strides(const Case& c, int64_t heads, int64_t seq, int64_t width) {
  return qkv::StridesFor(c.layout, heads, seq, width);
}

int64_t KeyEnd(const Case& c, int64_t b, int64_t i) {
  int64_t end = c.Sk;
  if (!c.kv_lengths.empty()) end = std::min<int64_t>(end, c.kv_lengths[b]);
  if (c.causal) end = std::min<int64_t>(end, c.offsets[b] + i + 1);
  return std::max<int64_t>(end, 0);
}

// Whether key j is inside row i's window (positions: offsets[b] + i and j).
bool InWindow(const Case& c, int64_t b, int64_t i, int64_t j) {
  if (c.window_left < 0 && c.window_right < 0) return true;
  const int64_t p = c.offsets[b] + i;
  return (c.window_left < 0 || j >= p - c.window_left) && (c.window_right < 0 || j <= p + c.window_right);
}

// Naive float64 attention: explicit scores, three-pass softmax.
void Reference(const Case& c, const Tensors& t, std::vector<double>& out, std::vector<double>& scores,
               std::vector<double>& weights, std::vector<double>& lse) {
  const int64_t G = c.H / c.Hkv;
  const double scale = c.scale != 0.0f ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.D));
  const auto qs = Strides(c, c.H, c.Sq, c.D), ks = Strides(c, c.Hkv, c.Sk, c.D);
  const auto vs = Strides(c, c.Hkv, c.Sk, c.Dv), os = Strides(c, c.H, c.Sq, c.Dv);
  out.assign(c.B * c.H * c.Sq * c.Dv, 0.0);
  scores.assign(c.B * c.H * c.Sq * c.Sk, 0.0);
  weights.assign(c.B * c.H * c.Sq * c.Sk, 0.0);
  lse.assign(c.B * c.H * c.Sq, -INFINITY);
  std::vector<double> s(c.Sk);
  for (int64_t b = 0; b < c.B; ++b) {
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t hk = h / G;
      for (int64_t i = 0; i < c.Sq; ++i) {
        const float* q = &t.q[b * qs.b + h * qs.h + i * qs.s];
        const int64_t ke = KeyEnd(c, b, i);
        const double sink = c.sinks.empty() ? -INFINITY : c.sinks[h];
        double m = sink;
        for (int64_t j = 0; j < c.Sk; ++j) {
          const float* k = &t.k[b * ks.b + hk * ks.h + j * ks.s];
          double dot = 0.0;
          for (int64_t d = 0; d < c.D; ++d) dot += static_cast<double>(q[d]) * k[d];
          double x = scale * dot;
          if (c.softcap > 0.0f) x = c.softcap * std::tanh(x / c.softcap);
          if (!c.alibi.empty()) x -= c.alibi[h] * std::fabs(static_cast<double>(c.offsets[b] + i - j));
          bool blocked = j >= ke || !InWindow(c, b, i, j);
          if (c.mask_kind == MaskKind::kFloat) {
            const float mv = t.fmask[MaskIndex(t, b, h, i, j)];
            if (mv == -kInf) blocked = true;
            x += mv;
          } else if (c.mask_kind == MaskKind::kBool) {
            if (t.bmask[MaskIndex(t, b, h, i, j)] == 0) blocked = true;
          }
          s[j] = blocked ? -INFINITY : x;
          m = std::max(m, s[j]);
        }
        const int64_t row = (b * c.H + h) * c.Sq + i;
        double* orow = &out[b * os.b + h * os.h + i * os.s];
        for (int64_t j = 0; j < c.Sk; ++j) scores[row * c.Sk + j] = s[j];
        if (m == -INFINITY) continue;  // every key blocked and no sink: zeros
        double l = std::exp(sink - m);  // the sink: a term of the denominator with no value
        for (int64_t j = 0; j < c.Sk; ++j) l += std::exp(s[j] - m);
        lse[row] = m + std::log(l);
        for (int64_t j = 0; j < c.Sk; ++j) {
          const double p = std::exp(s[j] - m) / l;
          weights[row * c.Sk + j] = p;
          if (p == 0.0) continue;
          const float* v = &t.v[b * vs.b + hk * vs.h + j * vs.s];
          for (int64_t x = 0; x < c.Dv; ++x) orow[x] += p * v[x];
        }
      }
    }
  }
}

struct Check {
  double max_abs = 0.0;
  int64_t bad = -1;
  double got = 0.0, want = 0.0;
};

void Compare(const float* got, const std::vector<double>& want, double tol_mult, Check& r) {
  const double atol = 1e-5 * tol_mult, rtol = 1e-4 * tol_mult;
  for (size_t x = 0; x < want.size(); ++x) {
    const double g = got[x], w = want[x];
    bool ok;
    if (std::isnan(w) || std::isinf(w)) {
      ok = std::isnan(w) ? std::isnan(g) : g == w;
    } else {
      const double err = std::fabs(g - w);
      ok = err <= atol + rtol * std::fabs(w);  // false for NaN
      if (std::isfinite(err)) r.max_abs = std::max(r.max_abs, err);
    }
    if (!ok && r.bad < 0) {
      r.bad = static_cast<int64_t>(x);
      r.got = g;
      r.want = w;
    }
  }
}

int g_passed = 0, g_failed = 0;

// Same bits (NaN payloads included), so thread-count parity means bitwise identical.
bool BitwiseEqual(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
}

void RunCase(Case c, const std::vector<std::string>& sets) {
  Tensors t = MakeInputs(c);
  if ((c.full_row_masked || c.inf_score_masked) && t.fmask.empty()) {  // needs a full float mask
    const int64_t full[4] = {c.B, c.H, c.Sq, c.Sk};
    c.mask_kind = MaskKind::kFloat;
    for (int d = 0; d < 4; ++d) c.mask_dims[d] = full[d];
    c.mask_inf_rate = 0.0f;
    t = MakeInputs(c);
  }
  if (c.full_row_masked) {
    for (int64_t j = 0; j < c.Sk; ++j) t.fmask[MaskIndex(t, 0, 0, c.Sq - 1, j)] = -kInf;
  }
  if (c.inf_score_masked) {
    // q(0,0,0) = (+inf, 0, ...); key 0 = (1, ...) gives +inf and is masked; every other key gets a
    // negative first element (score -inf). Expect scores all -inf and a zero output row.
    const auto qs = Strides(c, c.H, c.Sq, c.D), ks = Strides(c, c.Hkv, c.Sk, c.D);
    float* q = &t.q[0 * qs.b + 0 * qs.h + 0 * qs.s];
    for (int64_t d = 0; d < c.D; ++d) q[d] = d == 0 ? kInf : 0.0f;
    for (int64_t j = 0; j < c.Sk; ++j) {
      float* k = &t.k[0 * ks.b + 0 * ks.h + j * ks.s];
      k[0] = j == 0 ? 1.0f : -1.0f - std::fabs(k[0]);
      for (int64_t d = 1; d < c.D; ++d) k[d] = 0.5f;  // finite * 0 = 0: no NaN from other dims
    }
    t.fmask[MaskIndex(t, 0, 0, 0, 0)] = -kInf;
  }

  // float16 K/V: round here; the reference sees exactly the values the kernels will decode.
  std::vector<uint16_t> kh, vh;
  if (c.f16) {
    for (float& x : t.k) {
      kh.push_back(FloatToHalf(x));
      x = static_cast<float>(HalfBitsToDouble(kh.back()));
    }
    for (float& x : t.v) {
      vh.push_back(FloatToHalf(x));
      x = static_cast<float>(HalfBitsToDouble(vh.back()));
    }
  }

  std::vector<double> ref_out, ref_scores, ref_weights, ref_lse;
  Reference(c, t, ref_out, ref_scores, ref_weights, ref_lse);

  // Inputs and outputs at odd element offsets, like subarray views with a nonzero byteOffset.
  const int64_t off = 3;
  auto shifted = [&](const std::vector<float>& x) {
    std::vector<float> y(x.size() + off, 0.0f);
    std::copy(x.begin(), x.end(), y.begin() + off);
    return y;
  };
  const std::vector<float> q = shifted(t.q), k = shifted(t.k), v = shifted(t.v);
  std::vector<uint16_t> k16(kh.size() + off, 0), v16(vh.size() + off, 0);  // odd offsets: 2-byte aligned only
  std::copy(kh.begin(), kh.end(), k16.begin() + off);
  std::copy(vh.begin(), vh.end(), v16.begin() + off);
  const std::vector<float> fmask = shifted(t.fmask);
  std::vector<uint8_t> bmask(t.bmask.size() + off, 1);
  for (size_t x = 0; x < t.bmask.size(); ++x) bmask[x + off] = t.bmask[x];

  for (const std::string& set : sets) {
    if (!qkv::SetSimd(set.c_str())) {
      std::printf("FAIL %s [%s]: SetSimd refused\n", c.name.c_str(), set.c_str());
      ++g_failed;
      continue;
    }
    // NaN everywhere, with `off` guard elements on both sides that must stay NaN.
    std::vector<float> out(ref_out.size() + 2 * off, NAN);
    std::vector<float> scores(c.want_scores ? ref_scores.size() + 2 * off : 0, NAN);
    std::vector<float> weights(c.want_weights ? ref_weights.size() + 2 * off : 0, NAN);
    std::vector<float> lse(c.want_lse ? ref_lse.size() + 2 * off : 0, NAN);
    AttnArgs a{};
    a.shape = {c.B, c.H, c.Hkv, c.Sq, c.Sk, c.D, c.Dv};
    a.layout = c.layout;
    a.q = q.data() + off;
    a.kv_dtype = c.f16 ? qkv::KvDtype::kF16 : qkv::KvDtype::kF32;
    a.k = c.f16 ? static_cast<const void*>(k16.data() + off) : k.data() + off;
    a.v = c.f16 ? static_cast<const void*>(v16.data() + off) : v.data() + off;
    a.out = out.data() + off;
    a.scale = c.scale != 0.0f ? c.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.D)));
    a.softcap = c.softcap;
    a.causal = c.causal;
    a.offsets = c.offsets.empty() ? nullptr : c.offsets.data();
    a.window_left = c.window_left;
    a.window_right = c.window_right;
    a.sinks = c.sinks.empty() ? nullptr : c.sinks.data();
    a.alibi = c.alibi.empty() ? nullptr : c.alibi.data();
    a.lse = c.want_lse ? lse.data() + off : nullptr;
    a.kv_lengths = c.kv_lengths.empty() ? nullptr : c.kv_lengths.data();
    a.mask_kind = c.mask_kind;
    a.mask = c.mask_kind == MaskKind::kFloat  ? static_cast<const void*>(fmask.data() + off)
             : c.mask_kind == MaskKind::kBool ? static_cast<const void*>(bmask.data() + off)
                                              : nullptr;
    for (int d = 0; d < 4; ++d) a.mask_strides[d] = t.mask_strides[d];
    a.weights = c.want_weights ? weights.data() + off : nullptr;
    a.scores = c.want_scores ? scores.data() + off : nullptr;
    qkv::SetThreads(1);
    qkv::AttentionForward(a);

    // Thread-count parity: 2 and 3 threads must give bitwise the same out / scores / weights
    // (split over keys included: its chunks depend on the shape only).
    bool parity = true;
    for (int threads : {2, 3}) {
      std::vector<float> out2(out.size(), NAN), scores2(scores.size(), NAN), weights2(weights.size(), NAN);
      std::vector<float> lse2(lse.size(), NAN);
      AttnArgs a2 = a;
      a2.out = out2.data() + off;
      a2.weights = c.want_weights ? weights2.data() + off : nullptr;
      a2.scores = c.want_scores ? scores2.data() + off : nullptr;
      a2.lse = c.want_lse ? lse2.data() + off : nullptr;
      qkv::SetThreads(threads);
      qkv::AttentionForward(a2);
      qkv::SetThreads(1);
      parity = parity && BitwiseEqual(out, out2) && BitwiseEqual(scores, scores2) && BitwiseEqual(weights, weights2) &&
               BitwiseEqual(lse, lse2);
    }

    Check co, cs, cw, cl;
    Compare(out.data() + off, ref_out, c.tol_mult, co);
    if (c.want_lse) Compare(lse.data() + off, ref_lse, c.tol_mult, cl);
    if (c.want_scores) Compare(scores.data() + off, ref_scores, c.tol_mult, cs);
    if (c.want_weights) Compare(weights.data() + off, ref_weights, c.tol_mult, cw);
    bool guards = true;
    for (const std::vector<float>* buf : {&out, &scores, &weights, &lse}) {
      for (int64_t x = 0; x < off && !buf->empty(); ++x) {
        guards = guards && std::isnan((*buf)[x]) && std::isnan((*buf)[buf->size() - 1 - x]);
      }
    }
    const bool ok = co.bad < 0 && cs.bad < 0 && cw.bad < 0 && cl.bad < 0 && guards && parity;
    if (ok) {
      ++g_passed;
    } else {
      ++g_failed;
      std::printf("FAIL %s [%s]:", c.name.c_str(), set.c_str());
      const char* names[4] = {"out", "scores", "weights", "lse"};
      const Check* checks[4] = {&co, &cs, &cw, &cl};
      for (int x = 0; x < 4; ++x) {
        if (checks[x]->bad >= 0) {
          std::printf(" %s maxAbs=%.3g first bad [%lld] got %.9g want %.9g;", names[x], checks[x]->max_abs,
                      static_cast<long long>(checks[x]->bad), checks[x]->got, checks[x]->want);
        }
      }
      if (!guards) std::printf(" wrote outside its buffer;");
      if (!parity) std::printf(" 2 or 3 threads differ from 1 thread;");
      std::printf("\n");
    }
  }
}

std::string Describe(const Case& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "B=%lld H=%lld Hkv=%lld Sq=%lld Sk=%lld D=%lld Dv=%lld %s",
                static_cast<long long>(c.B), static_cast<long long>(c.H), static_cast<long long>(c.Hkv),
                static_cast<long long>(c.Sq), static_cast<long long>(c.Sk), static_cast<long long>(c.D),
                static_cast<long long>(c.Dv), c.layout == Layout::kBHSD ? "bhsd" : "bshd");
  return buf;
}

// One of several option sets, rotated over the shape grid.
void ApplyVariant(Case& c, int variant) {
  std::string tag;
  // Positions for the modifiers' variants: the causal offsets, else the non-causal Sk - Sq.
  auto positions = [&c]() {
    if (c.offsets.empty()) c.offsets.assign(c.B, static_cast<int32_t>(c.Sk - c.Sq));
  };
  auto per_head = [&c](float a, float b) {
    std::vector<float> x(c.H);
    for (int64_t h = 0; h < c.H; ++h) x[h] = a + b * static_cast<float>(h);
    return x;
  };
  switch (variant % 12) {
    case 0:
      tag = "plain";
      break;
    case 1:  // bottom-right causal (rows with offset + i < 0 see nothing when Sq > Sk)
      tag = "causal-br";
      c.causal = true;
      c.offsets.assign(c.B, static_cast<int32_t>(c.Sk - c.Sq));
      break;
    case 2:
      tag = "causal-tl+scores+weights";
      c.causal = true;
      c.offsets.assign(c.B, 0);
      c.want_scores = c.want_weights = true;
      break;
    case 3:
      tag = "float-mask[B,1,1,Sk]+weights";
      c.mask_kind = MaskKind::kFloat;
      c.mask_dims[0] = c.B;
      c.mask_dims[3] = c.Sk;
      c.mask_inf_rate = 0.2f;
      c.want_weights = true;
      break;
    case 4:
      tag = "bool-mask[Sq,Sk]+kvlen";
      c.mask_kind = MaskKind::kBool;
      c.mask_dims[2] = c.Sq;
      c.mask_dims[3] = c.Sk;
      c.mask_inf_rate = 0.3f;
      c.kv_lengths.resize(c.B);
      for (int64_t b = 0; b < c.B; ++b) c.kv_lengths[b] = static_cast<int32_t>(std::max<int64_t>(1, c.Sk - 3 * b - 1));
      break;
    case 5:
      tag = "softcap+scores";
      c.softcap = 5.0f;
      c.scale = 0.9f;
      c.want_scores = true;
      break;
    case 6:  // kv_lengths with an empty sequence, plus an explicit query offset
      tag = "kvlen0+offset+weights";
      c.kv_lengths.resize(c.B);
      for (int64_t b = 0; b < c.B; ++b) c.kv_lengths[b] = static_cast<int32_t>(b == 0 ? c.Sk / 2 : 0);
      c.causal = true;
      c.offsets.resize(c.B);
      for (int64_t b = 0; b < c.B; ++b) c.offsets[b] = static_cast<int32_t>(b * 2 + 1);
      c.want_weights = true;
      break;
    case 7:
      tag = "float-mask[B,H,Sq,Sk]+full-row+scores+weights";
      c.mask_kind = MaskKind::kFloat;
      c.mask_dims[0] = c.B;
      c.mask_dims[1] = c.H;
      c.mask_dims[2] = c.Sq;
      c.mask_dims[3] = c.Sk;
      c.full_row_masked = true;
      c.want_scores = c.want_weights = true;
      break;
    case 8:
      tag = "float-mask[H,Sq,1]+causal-br";
      c.mask_kind = MaskKind::kFloat;
      c.mask_dims[1] = c.H;
      c.mask_dims[2] = c.Sq;
      c.mask_inf_rate = 0.1f;
      c.causal = true;
      c.offsets.assign(c.B, static_cast<int32_t>(c.Sk - c.Sq));
      break;
    case 9:  // Mistral-like: causal with a left window, smaller and larger than a tile
      tag = "causal-br+window-left+sinks+lse";
      c.causal = true;
      c.offsets.assign(c.B, static_cast<int32_t>(c.Sk - c.Sq));
      // Long calls (the split-over-keys grid) get windows long enough to split.
      c.window_left = c.Sk > 1000 ? (c.seed % 2 ? 700 : 1030) : (c.seed % 2 ? 5 : 70);
      c.sinks = per_head(-1.0f, 0.7f);
      c.want_lse = true;
      break;
    case 10:  // ModernBERT-like bidirectional window, with ALiBi and a padding mask
      tag = "window-both+alibi+bool-mask[B,1,1,Sk]+weights+lse";
      positions();
      c.window_left = 3;
      c.window_right = 2;
      c.alibi = per_head(0.05f, 0.1f);
      c.mask_kind = MaskKind::kBool;
      c.mask_dims[0] = c.B;
      c.mask_dims[3] = c.Sk;
      c.mask_inf_rate = 0.2f;
      c.want_weights = c.want_lse = true;
      break;
    case 11:  // right side only, kv_lengths, explicit offsets, ALiBi and sinks together
      tag = "window-right+kvlen+offsets+alibi+sinks+lse";
      c.causal = c.seed % 2 == 0;
      c.offsets.resize(c.B);
      for (int64_t b = 0; b < c.B; ++b) c.offsets[b] = static_cast<int32_t>(b * 3 + c.Sk / 3);
      c.window_right = 0;
      c.kv_lengths.resize(c.B);
      for (int64_t b = 0; b < c.B; ++b) c.kv_lengths[b] = static_cast<int32_t>(std::max<int64_t>(1, c.Sk - 5 * b));
      c.alibi = per_head(0.25f, -0.02f);
      c.sinks = per_head(2.0f, -0.5f);
      c.want_scores = c.seed % 3 == 0;  // scores keep a call from splitting over keys
      c.want_lse = true;
      break;
  }
  c.name = Describe(c) + " " + tag;
}

// Every binary16 value as a value row: B = H = Sq = Sk = 1, D = 1, Dv = 65536 (k = 0.5, one key,
// weight exactly 1), so out[x] = 0 + 1 * v[x] must be the exact value of half x (NaN for NaN;
// -0 comes out +0, as 0 + -0 does). Then the same bits at an odd element offset in a bshd call.
void HalfDecodeCheck(const std::vector<std::string>& sets) {
  const int64_t n = 65536, off = 3;
  std::vector<uint16_t> v16(n + off), k16(1 + off, FloatToHalf(0.5f));
  for (int64_t x = 0; x < n; ++x) v16[x + off] = static_cast<uint16_t>(x);
  std::vector<float> q(1, 1.0f);
  for (const std::string& set : sets) {
    qkv::SetSimd(set.c_str());
    qkv::SetThreads(1);
    std::vector<float> out(n, NAN);
    AttnArgs a{};
    a.shape = {1, 1, 1, 1, 1, 1, n};
    a.layout = Layout::kBSHD;
    a.q = q.data();
    a.kv_dtype = qkv::KvDtype::kF16;
    a.k = k16.data() + off;
    a.v = v16.data() + off;
    a.out = out.data();
    a.scale = 1.0f;
    qkv::AttentionForward(a);
    int64_t bad = -1;
    for (int64_t x = 0; x < n && bad < 0; ++x) {
      const double want = HalfBitsToDouble(static_cast<uint16_t>(x));
      const bool ok = std::isnan(want) ? std::isnan(out[x]) : static_cast<double>(out[x]) == want;
      if (!ok) bad = x;
    }
    if (bad < 0) {
      ++g_passed;
    } else {
      ++g_failed;
      std::printf("FAIL half decode [%s]: half 0x%04llx gave %.9g, want %.9g\n", set.c_str(),
                  static_cast<unsigned long long>(bad), out[bad], HalfBitsToDouble(static_cast<uint16_t>(bad)));
    }
  }
}

// The case as it is, then (when `with_f16`) again with float16 K/V.
void RunBoth(Case c, const std::vector<std::string>& sets, bool with_f16) {
  RunCase(c, sets);
  if (!with_f16) return;
  c.f16 = true;
  c.name += " f16";
  RunCase(c, sets);
}

void RunTests(const std::vector<std::string>& sets, bool quick) {
  HalfDecodeCheck(sets);
  const int64_t Ds[] = {1, 3, 8, 17, 64, 67, 128};
  const int64_t HH[][2] = {{4, 4}, {8, 2}, {8, 1}, {6, 3}};
  const int64_t Sqs[] = {1, 7, 64, 130};
  const int64_t Sks[] = {1, 13, 600};
  int variant = 0;
  uint32_t seed = 1;
  for (int64_t D : Ds) {
    for (const auto& hh : HH) {
      for (int64_t Sq : Sqs) {
        for (int64_t Sk : Sks) {
          ++seed;
          if (quick && (seed % 3) != 0) continue;
          Case c;
          c.B = (seed % 2) + 1;
          c.H = hh[0];
          c.Hkv = hh[1];
          c.Sq = Sq;
          c.Sk = Sk;
          c.D = D;
          c.Dv = (seed % 5 == 0) ? (D % 7) * 9 + 5 : D;  // sometimes Dv != D (5, 14, 32, 41, ...)
          c.layout = (seed % 4 < 2) ? Layout::kBHSD : Layout::kBSHD;
          c.seed = seed;
          ApplyVariant(c, variant++);
          RunBoth(c, sets, seed % 3 == 0);  // a third of the grid with float16 K/V too
        }
      }
    }
  }

  // Split over keys (fewer than 64 tiles, >= 1024 visible keys, no scores / weights): decode-like
  // shapes on every path (dot-product tiles of <= kFew rows and transposed ones), with causal,
  // masks, kv_lengths and softcap; RunCase also checks 1 = 2 = 3 threads bitwise.
  {
    const int64_t Ds[] = {1, 8, 17, 64, 128};
    const int64_t HH[][2] = {{4, 4}, {8, 2}, {8, 1}, {3, 1}};
    const int64_t Sqs[] = {1, 3};
    int v = 0;
    for (int64_t D : Ds) {
      for (const auto& hh : HH) {
        for (int64_t Sq : Sqs) {
          ++seed;
          if (quick && (seed % 3) != 0) continue;
          Case c;
          c.B = (seed % 2) + 1;
          c.H = hh[0];
          c.Hkv = hh[1];
          c.Sq = Sq;
          c.Sk = 1100 + 37 * (seed % 4);
          c.D = D;
          c.Dv = (seed % 5 == 0) ? (D % 7) * 9 + 5 : D;
          c.layout = (seed % 4 < 2) ? Layout::kBHSD : Layout::kBSHD;
          c.seed = seed;
          const int variants[] = {0, 1, 4, 8, 9, 11};
          ApplyVariant(c, variants[v++ % 6]);
          c.name += " split-K";
          RunBoth(c, sets, true);
        }
      }
    }
  }
  {
    Case c;  // long decode: 1 row per tile, many chunks; float mask [B,1,1,Sk] with blocks + softcap
    c.B = 1, c.H = 2, c.Hkv = 2, c.Sq = 1, c.Sk = 5000, c.D = 67, c.Dv = 72, c.layout = Layout::kBSHD;
    c.mask_kind = MaskKind::kFloat;
    c.mask_dims[3] = c.Sk;
    c.mask_inf_rate = 0.5f;
    c.softcap = 20.0f;
    c.name = Describe(c) + " split-K long decode, mask + softcap";
    RunBoth(c, sets, true);
  }
  // Decode tiles over several kv heads (Sq = 1, G <= 4): more kv heads than one tile holds (70 and
  // 45 heads: a short last chunk of heads on every ISA), bshd like a KVCache, with and without the
  // split over keys, ragged kv_lengths and a per-head float mask; float16 K/V too.
  {
    const int64_t HH[][2] = {{70, 70}, {135, 45}, {100, 25}};
    const int64_t Sks[] = {40, 3000};
    int v = 0;
    for (const auto& hh : HH) {
      for (int64_t Sk : Sks) {
        Case c;
        c.B = 2, c.H = hh[0], c.Hkv = hh[1], c.Sq = 1, c.Sk = Sk, c.D = 24, c.Dv = 19;
        c.layout = Layout::kBSHD;
        c.kv_lengths = {static_cast<int32_t>(Sk), static_cast<int32_t>(Sk / 3)};
        if (v++ % 2 == 1) {
          c.mask_kind = MaskKind::kFloat;
          c.mask_dims[1] = c.H;
          c.mask_dims[3] = c.Sk;
          c.mask_inf_rate = 0.2f;
          c.softcap = 10.0f;
        }
        c.name = Describe(c) + " multi-head decode tiles";
        RunBoth(c, sets, true);
      }
    }
  }
  {
    Case c;  // ragged kv_lengths: batch 1 has fewer keys than a chunk, batch 2 none at all
    c.B = 3, c.H = 4, c.Hkv = 2, c.Sq = 2, c.Sk = 2500, c.D = 32, c.Dv = 32;
    c.kv_lengths = {2500, 300, 0};
    c.causal = true;
    c.offsets = {2498, 298, -2};
    c.name = Describe(c) + " split-K ragged kv_lengths";
    RunBoth(c, sets, true);
  }
  {
    Case c;  // a row fully blocked by the mask among split rows (zeros, never NaN)
    c.B = 1, c.H = 2, c.Hkv = 1, c.Sq = 2, c.Sk = 1500, c.D = 16, c.Dv = 16;
    c.full_row_masked = true;
    c.name = Describe(c) + " split-K full-row masked";
    RunBoth(c, sets, true);
  }

  // Targeted cases.
  {
    Case c;  // scores of magnitude ~1e4 stay finite (softmax is then nearly one-hot)
    c.H = 2, c.Hkv = 2, c.Sq = 33, c.Sk = 200, c.D = 64, c.Dv = 64;
    c.input_scale = 1e4f / 8.0f * 8.0f / 8.0f;  // q.k ~ N(0, 64) * 1250 ~ 1e4 after scale 1/8
    c.want_weights = true;
    c.tol_mult = 1e3;  // float scores carry ~1e-3 absolute error at this magnitude
    c.name = Describe(c) + " scores~1e4";
    RunBoth(c, sets, true);
  }
  {
    Case c;  // -inf mask blocks a +inf score
    c.H = 1, c.Hkv = 1, c.Sq = 3, c.Sk = 70, c.D = 4, c.Dv = 5;
    c.inf_score_masked = true;
    c.want_scores = c.want_weights = true;
    c.name = Describe(c) + " -inf mask blocks +inf score";
    RunBoth(c, sets, true);
  }
  {
    Case c;  // every key blocked by kv_lengths = 0 for the whole batch
    c.B = 2, c.H = 8, c.Hkv = 2, c.Sq = 5, c.Sk = 9, c.D = 16, c.Dv = 16;
    c.kv_lengths = {0, 0};
    c.want_scores = c.want_weights = true;
    c.name = Describe(c) + " all blocked";
    RunBoth(c, sets, true);
  }
  {
    Case c;  // many heads per group: more query heads than tile rows
    c.H = 300, c.Hkv = 2, c.Sq = 2, c.Sk = 77, c.D = 8, c.Dv = 3;
    c.causal = true;
    c.offsets = {75};
    c.want_weights = true;
    c.name = Describe(c) + " G=150 causal decode";
    RunBoth(c, sets, true);
  }
  {
    Case c;  // long causal with GQA, bshd: crosses many key blocks and the diagonal
    c.B = 1, c.H = 4, c.Hkv = 2, c.Sq = 300, c.Sk = 300, c.D = 64, c.Dv = 64, c.layout = Layout::kBSHD;
    c.causal = true;
    c.offsets = {0};
    c.want_scores = true;
    c.name = Describe(c) + " causal 300";
    RunBoth(c, sets, true);
  }
  {
    Case c;  // bool mask with broadcast keys (stride 0 over Sk) and softcap
    c.B = 2, c.H = 2, c.Hkv = 1, c.Sq = 20, c.Sk = 150, c.D = 80, c.Dv = 80;
    c.mask_kind = MaskKind::kBool;
    c.mask_dims[0] = 2, c.mask_dims[2] = 20;
    c.mask_inf_rate = 0.3f;
    c.softcap = 30.0f;
    c.scale = 2.0f;
    c.want_weights = true;
    c.name = Describe(c) + " bool mask [B,1,Sq,1] + softcap 30";
    RunBoth(c, sets, true);
  }
}

// ---- benchmark ----

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  return x[x.size() / 2];
}

#if defined(__x86_64__)
// 12 independent chains of 8-float FMAs (more than FMA latency x ports on current cores), kept in
// registers: acc = acc * a + b cannot be folded or reassociated without -ffast-math.
__attribute__((target("avx2,fma"), noinline)) double FmaPeakGflops() {
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(0.1f), c2 = _mm256_set1_ps(0.2f), c3 = _mm256_set1_ps(0.3f);
  __m256 c4 = _mm256_set1_ps(0.4f), c5 = _mm256_set1_ps(0.5f), c6 = _mm256_set1_ps(0.6f), c7 = _mm256_set1_ps(0.7f);
  __m256 c8 = _mm256_set1_ps(0.8f), c9 = _mm256_set1_ps(0.9f), c10 = _mm256_set1_ps(1.0f), c11 = _mm256_set1_ps(1.1f);
  const int64_t iters = 200000000;
  const double t0 = NowSeconds();
  for (int64_t n = 0; n < iters; ++n) {
    c0 = _mm256_fmadd_ps(c0, a, b), c1 = _mm256_fmadd_ps(c1, a, b), c2 = _mm256_fmadd_ps(c2, a, b);
    c3 = _mm256_fmadd_ps(c3, a, b), c4 = _mm256_fmadd_ps(c4, a, b), c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b), c7 = _mm256_fmadd_ps(c7, a, b), c8 = _mm256_fmadd_ps(c8, a, b);
    c9 = _mm256_fmadd_ps(c9, a, b), c10 = _mm256_fmadd_ps(c10, a, b), c11 = _mm256_fmadd_ps(c11, a, b);
  }
  const double t = NowSeconds() - t0;
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  float sink[8];
  _mm256_storeu_ps(sink, s);
  if (sink[0] == 12345.0f) std::printf("%f\n", sink[0]);
  return 12.0 * 8 * 2 * iters / t * 1e-9;
}
#endif

double TimeCall(const AttnArgs& a, int runs) {
  std::vector<double> ts;
  qkv::AttentionForward(a);  // warm-up (and workspace)
  for (int r = 0; r < runs; ++r) {
    const double t0 = NowSeconds();
    qkv::AttentionForward(a);
    ts.push_back(NowSeconds() - t0);
  }
  return Median(ts);
}

// ---- thread scaling (best ISA) ----

// Sum of p[0, n): 8 independent vector accumulators, so the loop is bound by the loads.
#if defined(__x86_64__)
__attribute__((target("avx2,fma"), noinline)) float SumFloats(const float* p, int64_t n) {
  __m256 acc[8];
  for (int x = 0; x < 8; ++x) acc[x] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    for (int x = 0; x < 8; ++x) acc[x] = _mm256_add_ps(acc[x], _mm256_loadu_ps(p + i + 8 * x));
  }
  for (int x = 1; x < 8; ++x) acc[0] = _mm256_add_ps(acc[0], acc[x]);
  float t[8];
  _mm256_storeu_ps(t, acc[0]);
  float s = 0.0f;
  for (int x = 0; x < 8; ++x) s += t[x];
  for (; i < n; ++i) s += p[i];
  return s;
}
#else
__attribute__((noinline)) float SumFloats(const float* p, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int x = 0; x < 16; ++x) acc[x] += p[i + x];
  }
  float s = 0.0f;
  for (int x = 0; x < 16; ++x) s += acc[x];
  for (; i < n; ++i) s += p[i];
  return s;
}
#endif

// Read bandwidth over `bytes` of memory, split in `threads` equal slices read at once (GB/s).
double ReadBandwidth(const std::vector<float>& buf, int threads) {
  const int64_t n = static_cast<int64_t>(buf.size());
  std::vector<double> ts;
  volatile float sink = 0.0f;
  for (int r = 0; r < 5; ++r) {
    std::vector<float> part(threads, 0.0f);
    const double t0 = NowSeconds();
    qkv::ParallelFor(threads, threads, [&](int64_t item, int) {
      const int64_t lo = n * item / threads, hi = n * (item + 1) / threads;
      part[item] = SumFloats(buf.data() + lo, hi - lo);
    });
    ts.push_back(NowSeconds() - t0);
    for (float x : part) sink = sink + x;
  }
  return static_cast<double>(n) * sizeof(float) / Median(ts) * 1e-9;
}

struct DecodeBuffers {
  std::vector<float> q, out;
  std::vector<std::vector<float>> k, v;  // several caches, read in turn (cold runs)
};

// 1 vs 2 threads on the shapes of issue 4, the decode bandwidth of issue 5, and what the machine
// itself gives (read bandwidth, FMA peak) on 1 and 2 threads.
void BenchScaling() {
  qkv::SetSimd("auto");
  std::printf("\n== thread scaling [%s], %d CPUs reported\n", qkv::SimdName(),
              static_cast<int>(std::thread::hardware_concurrency()));
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int thread_counts[] = {1, 2};

#if defined(__x86_64__)
  if (std::strncmp(qkv::BestSimdName(), "avx", 3) == 0) {  // avx2 or avx512: the 256-bit FMA peak
    double peak[2];
    for (int x = 0; x < 2; ++x) {
      const int th = thread_counts[x];
      qkv::SetThreads(th);
      std::vector<double> g(th, 0.0);
      qkv::ParallelFor(th, th, [&](int64_t item, int) { g[item] = FmaPeakGflops(); });
      peak[x] = 0.0;
      for (double y : g) peak[x] += y;
    }
    std::printf("FMA peak (12 chains x 8-float FMA per thread): 1 thread %.1f GFLOP/s, 2 threads %.1f GFLOP/s "
                "(%.2fx)\n", peak[0], peak[1], peak[1] / peak[0]);
  }
#endif
  {
    std::vector<float> buf(size_t{1} << 28, 1.0f);  // 1 GiB
    double bw[2];
    for (int x = 0; x < 2; ++x) {
      qkv::SetThreads(thread_counts[x]);
      bw[x] = ReadBandwidth(buf, thread_counts[x]);
    }
    std::printf("read bandwidth (vector sum over 1 GiB): 1 thread %.1f GB/s, 2 threads %.1f GB/s (%.2fx)\n", bw[0],
                bw[1], bw[1] / bw[0]);
  }

  auto time_threads = [&](AttnArgs a, int runs, double* t) {
    for (int x = 0; x < 2; ++x) {
      qkv::SetThreads(thread_counts[x]);
      t[x] = TimeCall(a, runs);
    }
    qkv::SetThreads(1);
  };

  {  // prefill-size SDPA
    const int64_t B = 1, H = 8, S = 4096, D = 64;
    std::vector<float> q(B * H * S * D), k(q.size()), v(q.size()), out(q.size());
    for (float& x : q) x = normal(rng);
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    const int32_t offsets[1] = {0};
    AttnArgs a{};
    a.shape = {B, H, H, S, S, D, D};
    a.layout = Layout::kBHSD;
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = out.data();
    a.scale = 0.125f;
    a.offsets = offsets;
    const double flops = 2.0 * B * H * S * S * (D + D);
    for (bool causal : {false, true}) {
      a.causal = causal;
      double t[2];
      time_threads(a, 5, t);
      std::printf("SDPA B=1 H=8 Sq=Sk=4096 D=64 %-10s 1 thread %7.1f ms (%5.1f GFLOP/s)  2 threads %7.1f ms (%5.1f)  "
                  "%.2fx\n", causal ? "causal" : "non-causal", t[0] * 1e3, flops / t[0] * 1e-9 / (causal ? 2 : 1),
                  t[1] * 1e3, flops / t[1] * 1e-9 / (causal ? 2 : 1), t[0] / t[1]);
    }
  }

  // Decode: one new token against a 4096-key cache, D = 128 (issue 5's shape), fp32 K and V.
  for (int64_t Hkv : {32, 8}) {
    const int64_t B = 1, H = 32, Sk = 4096, D = 128, n_caches = 8;  // 8 x 128 MiB (Hkv = 32) for cold runs
    const int64_t kv = B * Hkv * Sk * D;
    const double bytes = 2.0 * kv * sizeof(float);
    DecodeBuffers d;
    d.q.resize(B * H * D);
    d.out.resize(B * H * D);
    for (float& x : d.q) x = normal(rng);
    d.k.resize(n_caches);
    d.v.resize(n_caches);
    for (int64_t c = 0; c < n_caches; ++c) {
      d.k[c].resize(kv);
      d.v[c].resize(kv);
      for (int64_t x = 0; x < kv; ++x) d.k[c][x] = normal(rng), d.v[c][x] = normal(rng);
    }
    AttnArgs a{};
    a.shape = {B, H, Hkv, 1, Sk, D, D};
    a.layout = Layout::kBHSD;
    a.q = d.q.data(), a.out = d.out.data();
    a.scale = 1.0f / std::sqrt(static_cast<float>(D));
    double hot[2], cold[2];
    for (int x = 0; x < 2; ++x) {
      qkv::SetThreads(thread_counts[x]);
      std::vector<double> th, tc;
      for (int r = 0; r < 3 * n_caches; ++r) {  // caches in turn: none is in any cache level when read
        a.k = d.k[r % n_caches].data(), a.v = d.v[r % n_caches].data();
        const double t0 = NowSeconds();
        qkv::AttentionForward(a);
        tc.push_back(NowSeconds() - t0);
      }
      a.k = d.k[0].data(), a.v = d.v[0].data();
      qkv::AttentionForward(a);
      for (int r = 0; r < 15; ++r) {  // the same cache again and again (what fits of it stays in L3)
        const double t0 = NowSeconds();
        qkv::AttentionForward(a);
        th.push_back(NowSeconds() - t0);
      }
      hot[x] = Median(th);
      cold[x] = Median(tc);
    }
    qkv::SetThreads(1);
    std::printf("decode B=1 H=32 Hkv=%lld Sq=1 Sk=4096 D=128 (K+V %.0f MiB): rotating %d caches: 1 thread %.2f ms "
                "= %.1f GB/s, 2 threads %.2f ms = %.1f GB/s (%.2fx) | same cache: 1 thread %.2f ms = %.1f GB/s, "
                "2 threads %.2f ms = %.1f GB/s (%.2fx)\n",
                (long long)Hkv, bytes / (1 << 20), static_cast<int>(n_caches), cold[0] * 1e3, bytes / cold[0] * 1e-9,
                cold[1] * 1e3, bytes / cold[1] * 1e-9, cold[0] / cold[1], hot[0] * 1e3, bytes / hot[0] * 1e-9,
                hot[1] * 1e3, bytes / hot[1] * 1e-9, hot[0] / hot[1]);
  }
}

void Bench(const std::vector<std::string>& sets) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const std::string& set : sets) {
    qkv::SetSimd(set.c_str());
    const bool slow = set == "scalar";
    const int64_t B = 1, H = slow ? 1 : 8, S = 4096, D = 64, Dv = 64;
    std::vector<float> q(B * H * S * D), k(B * H * S * D), v(B * H * S * Dv), out(B * H * S * Dv);
    for (float& x : q) x = normal(rng);
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    const int32_t offsets[1] = {0};
    AttnArgs a{};
    a.shape = {B, H, H, S, S, D, Dv};
    a.layout = Layout::kBHSD;
    a.q = q.data();
    a.k = k.data();
    a.v = v.data();
    a.out = out.data();
    a.scale = 0.125f;
    a.offsets = offsets;
    const double flops = 2.0 * B * H * S * S * (D + Dv);
    const int runs = slow ? 3 : 7;
    a.causal = false;
    const double t_dense = TimeCall(a, runs);
    a.causal = true;
    const double t_causal = TimeCall(a, runs);
    std::printf("[%s] B=%lld H=%lld Sq=Sk=%lld D=Dv=%lld  non-causal %.1f ms = %.1f GFLOP/s | causal %.1f ms "
                "(%.2fx faster; %.1f GFLOP/s of useful work, %.1f dense-equivalent)\n",
                set.c_str(), (long long)B, (long long)H, (long long)S, (long long)D, t_dense * 1e3,
                flops / t_dense * 1e-9, t_causal * 1e3, t_dense / t_causal,
                flops * (S + 1) / (2.0 * S) / t_causal * 1e-9, flops / t_causal * 1e-9);

    // Per-call overhead of a tiny call: B=1 H=1 S=16 D=64.
    AttnArgs s = a;
    s.shape = {1, 1, 1, 16, 16, 64, 64};
    s.causal = false;
    const int n = 20000;
    qkv::AttentionForward(s);
    const double t0 = NowSeconds();
    for (int r = 0; r < n; ++r) qkv::AttentionForward(s);
    std::printf("[%s] B=1 H=1 S=16 D=64: %.2f us per call\n", set.c_str(), (NowSeconds() - t0) / n * 1e6);
  }
  BenchScaling();
}

}  // namespace

int main(int argc, char** argv) {
  bool bench = false, quick = false;
  for (int x = 1; x < argc; ++x) {
    if (std::strcmp(argv[x], "--bench") == 0) bench = true;
    if (std::strcmp(argv[x], "--quick") == 0) quick = true;
  }
  const char* names[qkv::kMaxKernelSets];
  const std::vector<std::string> sets(names, names + qkv::SupportedSimd(names));  // scalar first, best last
  std::printf("kernel sets: ");
  for (const auto& s : sets) std::printf("%s ", s.c_str());
  std::printf("(default: %s)\n", qkv::SimdName());
  if (bench) {
    Bench(sets);
    return 0;
  }
  RunTests(sets, quick);
  qkv::SetSimd("auto");
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
