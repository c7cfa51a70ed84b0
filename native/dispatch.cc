// SPDX-License-Identifier: MIT
//
// Run-time choice of the kernel set (see dispatch.h). Compiled for the baseline ISA: the cpuid /
// xgetbv probes below are plain x86-64 instructions, no AVX is emitted here. The kernel sets are
// the only place that pairs an ISA's attention table with its GEMM table.
#include "dispatch.h"

#include <atomic>
#include <cstdint>
#include <cstring>

#include "kernels/gemm_kernels.h"
#include "kernels/kernels.h"
#include "kernels/rope_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace qkv {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
// CPU: cpuid(1).ecx[12] FMA, cpuid(1).ecx[29] F16C (float16 K/V), cpuid(7,0).ebx[5] AVX2.
// OS:  cpuid(1).ecx[27] OSXSAVE and xgetbv(0) bits 1-2 (XMM and YMM state saved on context switch).
bool CpuAndOsSupportAvx2Fma() {
#if defined(_MSC_VER) && !defined(__clang__)
  int r[4];
  __cpuid(r, 0);
  if (r[0] < 7) return false;
  __cpuid(r, 1);
  const uint32_t ecx1 = static_cast<uint32_t>(r[2]);
  if (!(ecx1 & (1u << 12)) || !(ecx1 & (1u << 27)) || !(ecx1 & (1u << 29))) return false;
  if ((_xgetbv(0) & 6) != 6) return false;
  __cpuidex(r, 7, 0);
  return (static_cast<uint32_t>(r[1]) & (1u << 5)) != 0;
#else
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  if (!(ecx & (1u << 12)) || !(ecx & (1u << 27)) || !(ecx & (1u << 29))) return false;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));  // needs OSXSAVE, checked above
  (void)xcr0_hi;
  if ((xcr0_lo & 6) != 6) return false;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return (ebx & (1u << 5)) != 0;
#endif
}

// AVX-512F on top of the above: cpuid(7,0).ebx[16], and xgetbv(0) bits 5-7 (opmask, upper halves
// of zmm0-15, zmm16-31) saved by the OS.
bool CpuAndOsSupportAvx512() {
  if (!CpuAndOsSupportAvx2Fma()) return false;
#if defined(_MSC_VER) && !defined(__clang__)
  int r[4];
  __cpuidex(r, 7, 0);
  if (!(static_cast<uint32_t>(r[1]) & (1u << 16))) return false;
  return (_xgetbv(0) & 0xE6) == 0xE6;
#else
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(ebx & (1u << 16))) return false;
  uint32_t xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));  // OSXSAVE checked above
  (void)xcr0_hi;
  return (xcr0_lo & 0xE6) == 0xE6;
#endif
}
#endif

// Every set this build has; which of them this machine runs is decided below.
constexpr KernelSet kScalar{"scalar", kKernelsScalar, kGemmScalar, kRopeScalar};
#if defined(__x86_64__) || defined(_M_X64)
constexpr KernelSet kAvx2{"avx2", kKernelsAvx2, kGemmAvx2, kRopeAvx2};
constexpr KernelSet kAvx512{"avx512", kKernelsAvx512, kGemmAvx512, kRopeAvx512};
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
constexpr KernelSet kNeon{"neon", kKernelsNeon, kGemmNeon, kRopeNeon};
#endif

// The runnable sets, scalar first and the best last; n of them. Detected once (thread-safe static).
struct Supported {
  const KernelSet* sets[kMaxKernelSets];
  int n;
};

const Supported& Runnable() {
  static const Supported supported = [] {
    Supported s{{&kScalar}, 1};
#if defined(__x86_64__) || defined(_M_X64)
    if (CpuAndOsSupportAvx2Fma()) s.sets[s.n++] = &kAvx2;
    if (CpuAndOsSupportAvx512()) s.sets[s.n++] = &kAvx512;
#elif defined(__aarch64__) || defined(_M_ARM64)
    s.sets[s.n++] = &kNeon;  // NEON is baseline on AArch64
#endif
    return s;
  }();
  return supported;
}

const KernelSet* Best() { return Runnable().sets[Runnable().n - 1]; }

std::atomic<const KernelSet*> g_configured{nullptr};  // ConfigureSimd(); null = the best
std::atomic<const KernelSet*> g_override{nullptr};    // SetSimd(); null = none

}  // namespace

const KernelSet& Kernels() {
  const KernelSet* forced = g_override.load(std::memory_order_acquire);
  if (forced != nullptr) return *forced;
  const KernelSet* configured = g_configured.load(std::memory_order_acquire);
  return configured != nullptr ? *configured : *Best();
}

const char* SimdName() { return Kernels().name; }

const char* BestSimdName() { return Best()->name; }

int SupportedSimd(const char* names[kMaxKernelSets]) {
  const Supported& s = Runnable();
  for (int i = 0; i < s.n; ++i) names[i] = s.sets[i]->name;
  return s.n;
}

const KernelSet* RunnableSet(const char* name) {
  if (name == nullptr) return nullptr;
  const Supported& s = Runnable();
  for (int i = 0; i < s.n; ++i) {
    if (std::strcmp(name, s.sets[i]->name) == 0) return s.sets[i];
  }
  return nullptr;
}

bool ConfigureSimd(const char* name) {
  if (name == nullptr) return false;
  const KernelSet* set = std::strcmp(name, "auto") == 0 ? Best() : RunnableSet(name);
  if (set == nullptr) return false;
  g_configured.store(set, std::memory_order_release);
  return true;
}

bool SetSimd(const char* name) {
  if (name == nullptr) return false;
  if (std::strcmp(name, "auto") == 0) {
    g_override.store(nullptr, std::memory_order_release);
    return true;
  }
  const KernelSet* set = RunnableSet(name);
  if (set == nullptr) return false;
  g_override.store(set, std::memory_order_release);
  return true;
}

}  // namespace qkv
