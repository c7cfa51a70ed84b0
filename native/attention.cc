// AttentionForward: cuts one call into independent tiles and runs the selected ISA kernel on each.
//
// A work item is one tile: batch b, kv head hk, a chunk of that group's query heads g in [g0, g1)
// and a chunk of query positions i in [i0, i1). Its rows (i, g) go i-major, r = (i - i0) * Gt +
// (g - g0), and all read the same keys and values (k, v of head hk), so GQA/MQA query heads share
// every K/V block the kernel loads; with Sq = 1 (decode) a tile is the G heads of one group.
// i-major also keeps key_end nondecreasing along the rows, which the kernel needs (kernels.h).
//
// Items are independent and write disjoint rows of out / weights / scores, so a pool can run
// them as parallel_for(n_items, ...), each worker with its own workspace (thread_local below).
// With causal masking, items of larger i cost more (they see more keys).
#include "attention.h"

#include <cstddef>
#include <cstdint>
#include <new>

#include "dispatch.h"
#include "kernels/kernels.h"

namespace qkv {
namespace {

static_assert(static_cast<int32_t>(MaskKind::kNone) == 0 && static_cast<int32_t>(MaskKind::kFloat) == 1 &&
                  static_cast<int32_t>(MaskKind::kBool) == 2,
              "AttnTile::mask_kind carries MaskKind values");

constexpr int64_t kMaxTileRows = 256;  // bound on KernelTable::tile_rows (rows live on the stack)

int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }
int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-worker scratch: grows to the largest tile workspace seen and is kept, so steady-state calls
// allocate nothing. Sized by the tile (O(Br (D + Bc + Dv))), never by Sq or Sk.
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { Free(); }

  // Throws std::bad_alloc, leaving the old buffer in place, when the memory is not there.
  float* Reserve(size_t floats) {
    if (floats > capacity_) {
      void* p = ::operator new(floats * sizeof(float), std::align_val_t(kAlign));
      Free();
      data_ = static_cast<float*>(p);
      capacity_ = floats;
    }
    return data_;
  }

 private:
  static constexpr size_t kAlign = 64;
  void Free() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t(kAlign));
    data_ = nullptr;
    capacity_ = 0;
  }
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

thread_local Workspace t_workspace;

// How a call splits into tiles; everything RunItem needs besides the workspace.
struct Plan {
  const AttnArgs* a;
  const KernelTable* kernels;
  TensorStrides qs, ks, vs, os;
  int64_t G;          // query heads per kv head
  int64_t Gt;         // query heads per tile (all G unless G > Br)
  int64_t Pt;         // query positions per tile
  int64_t n_g, n_i;   // chunks of heads / of positions per (b, hk)
  int64_t n_items;
};

Plan MakePlan(const AttnArgs& a, const KernelTable& kt) {
  const AttnShape& s = a.shape;
  Plan p;
  p.a = &a;
  p.kernels = &kt;
  p.qs = StridesFor(a.layout, s.H, s.Sq, s.D);
  p.ks = StridesFor(a.layout, s.Hkv, s.Sk, s.D);
  p.vs = StridesFor(a.layout, s.Hkv, s.Sk, s.Dv);
  p.os = StridesFor(a.layout, s.H, s.Sq, s.Dv);
  const int64_t Br = Min(kt.tile_rows, kMaxTileRows);
  p.G = s.H / s.Hkv;
  p.Gt = Min(p.G, Br);
  p.Pt = Br / p.Gt;
  p.n_g = CeilDiv(p.G, p.Gt);
  p.n_i = CeilDiv(s.Sq, p.Pt);
  p.n_items = s.B * s.Hkv * p.n_g * p.n_i;
  return p;
}

// Keys [key_end, Sk) are blocked for query position i of batch b: kv_lengths and causal.
int64_t KeyEnd(const AttnArgs& a, int64_t b, int64_t i) {
  int64_t end = a.shape.Sk;
  if (a.kv_lengths != nullptr) end = Min(end, a.kv_lengths[b]);
  if (a.causal) end = Min(end, static_cast<int64_t>(a.offsets[b]) + i + 1);
  return Max(end, 0);
}

void RunItem(const Plan& p, int64_t item, float* workspace) {
  const AttnArgs& a = *p.a;
  const AttnShape& s = a.shape;
  const int64_t ic = item % p.n_i;
  item /= p.n_i;
  const int64_t gc = item % p.n_g;
  item /= p.n_g;
  const int64_t hk = item % s.Hkv;
  const int64_t b = item / s.Hkv;
  const int64_t i0 = ic * p.Pt, i1 = Min(s.Sq, i0 + p.Pt);
  const int64_t g0 = gc * p.Gt, g1 = Min(p.G, g0 + p.Gt);

  const size_t mask_elem = a.mask_kind == MaskKind::kFloat ? sizeof(float) : sizeof(uint8_t);
  const int64_t* ms = a.mask_strides;
  TileRow rows[kMaxTileRows];
  int64_t n = 0;
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t key_end = KeyEnd(a, b, i);
    for (int64_t g = g0; g < g1; ++g, ++n) {
      const int64_t h = hk * p.G + g;
      const int64_t bhi = (b * s.H + h) * s.Sq + i;  // row of [B, H, Sq, Sk]
      TileRow& row = rows[n];
      row.q = a.q + b * p.qs.b + h * p.qs.h + i * p.qs.s;
      row.out = a.out + b * p.os.b + h * p.os.h + i * p.os.s;
      row.mask = a.mask_kind == MaskKind::kNone
                     ? nullptr
                     : static_cast<const char*>(a.mask) + (b * ms[0] + h * ms[1] + i * ms[2]) * mask_elem;
      row.weights = a.weights != nullptr ? a.weights + bhi * s.Sk : nullptr;
      row.scores = a.scores != nullptr ? a.scores + bhi * s.Sk : row.weights;  // weights as scratch
      row.key_end = key_end;
    }
  }

  AttnTile tile;
  tile.k = a.k + b * p.ks.b + hk * p.ks.h;
  tile.k_stride = p.ks.s;
  tile.v = a.v + b * p.vs.b + hk * p.vs.h;
  tile.v_stride = p.vs.s;
  tile.D = s.D;
  tile.Dv = s.Dv;
  tile.Sk = s.Sk;
  tile.scale = a.scale;
  tile.softcap = a.softcap;
  tile.mask_kind = static_cast<int32_t>(a.mask_kind);
  tile.mask_stride = a.mask_kind == MaskKind::kNone ? 0 : ms[3];
  tile.n_rows = n;
  tile.rows = rows;
  p.kernels->attend_tile(tile, workspace);
}

}  // namespace

void AttentionForward(const AttnArgs& args) {
  const AttnShape& s = args.shape;
  if (s.B <= 0 || s.H <= 0 || s.Hkv <= 0 || s.Sq <= 0 || s.Sk < 0 || s.D <= 0 || s.Dv <= 0) return;
  const KernelTable& kt = Kernels();
  // Allocate before anything is written: a failure leaves every output untouched.
  float* workspace = t_workspace.Reserve(kt.workspace_floats(s.D, s.Dv));
  const Plan plan = MakePlan(args, kt);
  for (int64_t item = 0; item < plan.n_items; ++item) RunItem(plan, item, workspace);
}

}  // namespace qkv
