// Run-time choice of the SIMD kernels: detected once, overridable for tests and by QKV_SIMD.
#pragma once

namespace qkv {

struct KernelTable;

// The table every kernel call goes through. Detection runs once (thread-safe static).
const KernelTable& Kernels();

// "avx512" | "avx2" | "neon" | "scalar": the kernels Kernels() returns now.
const char* SimdName();

// Best kernels this CPU and OS support, ignoring any override.
const char* BestSimdName();

// Forces a kernel set by name (any set this machine can run; "auto" clears the override).
// Returns false, changing nothing, for a name this machine cannot run.
bool SetSimd(const char* name);

}  // namespace qkv
