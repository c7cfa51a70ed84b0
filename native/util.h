// SPDX-License-Identifier: MIT
//
// Small helpers shared by every part of native/ (the drivers, the bindings and the kernel headers):
// int64_t Min / Max / CeilDiv / RoundUp, and AlignedBuffer, the grow-only 64-byte aligned scratch
// that each thread keeps for its calls. No N-API, no ISA code.
//
// Everything here is constexpr or inline and sits in an anonymous namespace, on purpose: this header
// is included by the -mavx2 / -mavx512f kernel translation units too (kernels/vec_math.h). A plain
// inline function with external linkage that the compiler chose not to inline there would be
// emitted as a weak symbol compiled with AVX, and the linker may keep that copy for a baseline
// caller, which then dies with SIGILL on a CPU without AVX. With internal linkage every translation
// unit has its own copy, built with its own flags. (Templates would have the same problem, which is
// why these are not std::min / std::max.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace qkv {
namespace {

constexpr int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }
// a, b > 0
constexpr int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
// The multiple of m (> 0) at or above a >= 0.
constexpr int64_t RoundUp(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

// Scratch floats on a 64-byte boundary, grown to the largest size asked for and kept, so that
// steady-state calls allocate nothing. Reserve throws std::bad_alloc, leaving the old buffer in
// place, when the memory is not there: callers reserve before they write any output.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { Free(); }

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

}  // namespace
}  // namespace qkv
