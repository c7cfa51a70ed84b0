// Run-time choice of the kernel table (see dispatch.h). Compiled for the baseline ISA: the cpuid /
// xgetbv probes below are plain x86-64 instructions, no AVX is emitted here.
//
// QKV_SIMD (read once, at the first Kernels() call):
//   unset, "" or "auto"  the best table this CPU and OS support
//   "scalar"             the scalar kernels
//   "avx2" / "avx512" / "neon"   that table when this machine can run it
//   anything else, or a table this machine cannot run: the best table, with a one-line warning
//   on stderr (an unusable setting must not crash or disable SIMD, but it must not go unnoticed).
// SetSimd() overrides that choice for tests; SetSimd("auto") goes back to it.
#include "dispatch.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/kernels.h"

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

const KernelTable* Best() {
  static const KernelTable* const best = [] {
#if defined(__x86_64__) || defined(_M_X64)
    if (CpuAndOsSupportAvx512()) return &kKernelsAvx512;
    if (CpuAndOsSupportAvx2Fma()) return &kKernelsAvx2;
#elif defined(__aarch64__) || defined(_M_ARM64)
    return &kKernelsNeon;  // NEON is baseline on AArch64
#endif
    return &kKernelsScalar;
  }();
  return best;
}

// A table this machine can run, by name; null otherwise.
const KernelTable* Runnable(const char* name) {
  if (std::strcmp(name, kKernelsScalar.name) == 0) return &kKernelsScalar;
  if (std::strcmp(name, Best()->name) == 0) return Best();
#if defined(__x86_64__) || defined(_M_X64)
  if (std::strcmp(name, kKernelsAvx2.name) == 0 && CpuAndOsSupportAvx2Fma()) return &kKernelsAvx2;
#endif
  return nullptr;
}

const KernelTable* FromEnv() {
  static const KernelTable* const chosen = [] {
    const char* env = std::getenv("QKV_SIMD");
    if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) return Best();
    if (const KernelTable* t = Runnable(env)) return t;
    std::fprintf(stderr, "qkv: QKV_SIMD=%s is not available here (auto, scalar and %s are, and any set below it); using %s\n",
                 env, Best()->name, Best()->name);
    return Best();
  }();
  return chosen;
}

std::atomic<const KernelTable*> g_override{nullptr};  // set only through SetSimd()

}  // namespace

const KernelTable& Kernels() {
  const KernelTable* forced = g_override.load(std::memory_order_acquire);
  return forced != nullptr ? *forced : *FromEnv();
}

const char* SimdName() { return Kernels().name; }

const char* BestSimdName() { return Best()->name; }

bool SetSimd(const char* name) {
  if (name == nullptr) return false;
  if (std::strcmp(name, "auto") == 0) {
    g_override.store(nullptr, std::memory_order_release);
    return true;
  }
  const KernelTable* t = Runnable(name);
  if (t == nullptr) return false;
  g_override.store(t, std::memory_order_release);
  return true;
}

}  // namespace qkv
