// SPDX-License-Identifier: MIT
//
// Run-time choice of the SIMD kernels, in one place: one kernel set per ISA, holding that ISA's
// attention table (kernels/kernels.h), GEMM table (kernels/gemm_kernels.h) and RoPE table (kernels/rope_kernels.h), so that every
// operation of a call runs on the same ISA. CPU and OS support are detected once (cpuid + xgetbv on
// x86-64; NEON is baseline on AArch64). The set in use is, in this order of precedence:
//   SetSimd(name)        a test override (binding._setSimd), until SetSimd("auto")
//   ConfigureSimd(name)  the process default, set by lib/ at load (binding.configure)
//   the best set this CPU and OS can run.
// Nothing here reads the environment: lib/ validates QKV_SIMD and passes it on.
#pragma once

namespace qkv {

struct KernelTable;
struct GemmKernelTable;
struct RopeKernelTable;

struct KernelSet {
  const char* name;  // "scalar" | "avx2" | "avx512" | "neon"
  const KernelTable& attention;
  const GemmKernelTable& gemm;
  const RopeKernelTable& rope;
};

constexpr int kMaxKernelSets = 4;

// The set every kernel call goes through now. Thread-safe; cheap (one atomic load).
const KernelSet& Kernels();

// Kernels().name.
const char* SimdName();

// Name of the best set this CPU and OS support, ignoring any override or configuration.
const char* BestSimdName();

// The sets this CPU and OS can run, scalar first and the best last: fills names[0, n) and returns n.
int SupportedSimd(const char* names[kMaxKernelSets]);

// The set of that name when this machine can run it; null otherwise.
const KernelSet* RunnableSet(const char* name);

// Sets the process default: a runnable set's name, or "auto" (the best). Returns false, changing
// nothing, for a name this machine cannot run.
bool ConfigureSimd(const char* name);

// Test override: forces a runnable set process-wide; "auto" clears the override (back to the
// configured default). Returns false, changing nothing, for a name this machine cannot run.
bool SetSimd(const char* name);

}  // namespace qkv
