// SPDX-License-Identifier: MIT
//
// Small helpers shared by every part of native/ (the drivers, the bindings and the kernel headers):
// int64_t Min / Max / CeilDiv / RoundUp, AlignedBuffer (64-byte aligned scratch floats) and
// CallScratch (a call's scratch: a thread's kept buffer up to a cap, else the call's own). No N-API,
// no ISA code.
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

// What a thread that makes calls keeps of each driver's scratch (attention.cc, gemm.cc) between
// calls: at most this many floats per compute thread (Threads(), as the scratch of every slot of a
// call is reserved by its calling thread), 2 MiB. Enough for the usual shapes to allocate nothing
// once warm: an attention tile's workspace at D = Dv = 256 (the largest head size of today's usual
// models) is 208 KiB per slot, and the split partials of a decode step with 8 kv heads of 4 query
// heads and Dv = 128 about 1 MiB (B = 1) whatever Sk; a GEMM slot's A block is 384 KiB, and the one
// shared A block of a small-M projection is 768 KiB per 1024 of K (3 MiB at K = 4096, within two
// threads' share). A call that needs more gets its own buffer, freed when it returns.
constexpr size_t kKeptScratchFloatsPerThread = (size_t{2} << 20) / sizeof(float);

// Scratch floats on a 64-byte boundary. Reserve grows the buffer to the size asked for (never
// shrinks it) and throws std::bad_alloc, leaving the old buffer in place, when the memory is not
// there: callers reserve before they write any output. Release frees it.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { Release(); }

  float* Reserve(size_t floats) {
    if (floats > capacity_) {
      void* p = ::operator new(floats * sizeof(float), std::align_val_t(kAlign));
      Release();
      data_ = static_cast<float*>(p);
      capacity_ = floats;
    }
    return data_;
  }

  size_t capacity() const { return capacity_; }

  void Release() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t(kAlign));
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  static constexpr size_t kAlign = 64;
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

// The scratch of one call, taken from `kept` (a thread's buffer, reused from call to call so that
// steady-state calls allocate nothing) when the call needs at most `keep` floats, and otherwise
// allocated for this call alone and freed with this object, so a call with a huge shape leaves
// nothing behind. `kept` never holds more than `keep` floats past the construction (a larger one,
// left from a call with a larger cap, is released). Throws std::bad_alloc before anything is
// written, as AlignedBuffer::Reserve.
class CallScratch {
 public:
  CallScratch(AlignedBuffer& kept, size_t floats, size_t keep) {
    if (kept.capacity() > keep) kept.Release();
    data_ = floats <= keep ? kept.Reserve(floats) : own_.Reserve(floats);
  }
  CallScratch(const CallScratch&) = delete;
  CallScratch& operator=(const CallScratch&) = delete;

  float* data() const { return data_; }

 private:
  AlignedBuffer own_;
  float* data_ = nullptr;
};

}  // namespace
}  // namespace qkv
