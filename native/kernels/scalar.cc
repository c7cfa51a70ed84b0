// Scalar kernels: the reference instantiation of kernels/attend_tile.h, one float per "vector", no
// intrinsics. Runs on any CPU (compiled for the baseline ISA) and must be right for every shape;
// the SIMD tables are tested against the same float64 reference.
#include <cmath>

#include "kernels/attend_tile.h"
#include "kernels/rope_rows.h"

namespace qkv {
namespace {

struct V {
  using T = float;
  using M = bool;
  static constexpr int W = 1;
  static constexpr int kR = 4, kC = 2;     // 4 keys (or rows) x 2 floats: 8 independent sums
  static constexpr int kBr = 32, kBc = 64;
  // Tiles of <= 2 rows take the dot-product path (as on the SIMD ISAs, so it is tested here too).
  static constexpr int kFew = 2, kFewC = 4;
  static T zero() { return 0.0f; }
  static T set1(float x) { return x; }
  static T load(const float* p) { return *p; }
  static T load_half(const uint16_t* p) { return HalfToFloat(*p); }  // portable (kernels/vec_math.h)
  static void store(float* p, T x) { *p = x; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
  static T fmadd(T acc, T x, T y) { return acc + x * y; }
  static T max(T a, T b) { return a > b ? a : b; }  // NaN in either -> b, as on x86
  static T min(T a, T b) { return a < b ? a : b; }
  static M eq(T a, T b) { return a == b; }
  static M lt(T a, T b) { return a < b; }
  static T select(M m, T a, T b) { return m ? a : b; }
  static T abs(T x) { return std::fabs(x); }
  static T copysign(T mag, T sgn) { return std::copysign(mag, sgn); }
  static float sum(T x) { return x; }
  static void sums8(const T* a, float* out) {
    for (int i = 0; i < 8; ++i) out[i] = a[i];
  }
  static void prefetch(const float*) {}  // the reference path: no hints
  static T exp(T x) { return std::exp(x); }
  static T tanh(T x) { return std::tanh(x); }
};

}  // namespace

extern const KernelTable kKernelsScalar = {"scalar", V::kBr, &WorkspaceFloats<V>, &AttendTileAny<V>};
extern const RopeKernelTable kRopeScalar = RopeTableOf<V>();

}  // namespace qkv
