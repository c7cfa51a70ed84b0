// SPDX-License-Identifier: MIT
//
// The row dispatch shared by the SIMD SGEMM micro-kernels (kernels/gemm_avx2.cc, gemm_avx512.cc,
// gemm_neon.cc): their register tiles are templates over the row count R, and an edge tile of
// mr < MR rows runs the instantiation for exactly mr rows.
//
// Included ONLY by those kernel translation units, each built with its own ISA flags, so the
// template lives in an anonymous namespace (internal linkage): an instantiation compiled with AVX
// must never become a weak symbol that a baseline caller could be linked to (see native/util.h).
#pragma once

#include <cstdint>

namespace qkv {
namespace {

constexpr int kGemmTileRows = 6;  // MR of every SIMD table

// Tiles::Run<R>(args...) with R = mr, for 1 <= mr <= kGemmTileRows (anything else runs R = 1).
// Tiles is a struct whose static member template Run<R> forwards to the ISA's tile.
template <class Tiles, class... Args>
inline void ForTileRows(int64_t mr, Args... args) {
  switch (mr) {
    case 6: Tiles::template Run<6>(args...); break;
    case 5: Tiles::template Run<5>(args...); break;
    case 4: Tiles::template Run<4>(args...); break;
    case 3: Tiles::template Run<3>(args...); break;
    case 2: Tiles::template Run<2>(args...); break;
    default: Tiles::template Run<1>(args...); break;
  }
}

}  // namespace
}  // namespace qkv
