#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds and runs the standalone SGEMM harness (test/native/gemm_test.cc); no Node needed.
#   test/native/gemm_run.sh            x86-64 tests (scalar + avx2 + avx512 where the CPU has them),
#                                      then arm64 tests under qemu (scalar + neon)
#   test/native/gemm_run.sh --bench [--only avx2]   x86-64 GFLOP/s per ISA and the measured FMA peak
#   test/native/gemm_run.sh --x86      x86-64 tests only          --arm   arm64 tests only
# Flags mirror CMakeLists.txt: baseline for everything but the ISA files (avx2.cc and gemm_avx2.cc:
# -mavx2 -mfma -mf16c; avx512.cc and gemm_avx512.cc: -mavx512f on top). The kernel sets
# (native/dispatch.cc) pair each GEMM table with its attention table, so those are linked too.
# Also checks that the baseline objects contain no AVX (ymm) instructions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${GEMM_OUT:-${TMPDIR:-/tmp}/qkv-gemm-test}  # outside build/: cmake-js rebuild wipes that
mkdir -p "$OUT"
source "$ROOT/test/native/isa_objects.sh"
CXXFLAGS=(-std=c++17 -O3 -fno-math-errno -Wall -Wextra -pthread -I"$ROOT/native" ${EXTRA_CXXFLAGS:-})
SRC_BASE=("$ROOT/native/gemm.cc" "$ROOT/native/thread_pool.cc" "$ROOT/native/dispatch.cc"
          "$ROOT/native/kernels/gemm_scalar.cc" "$ROOT/native/kernels/scalar.cc")
mode=${1:-all}

build_x86() {
  local objs=()
  for f in "${SRC_BASE[@]}" "$ROOT/test/native/gemm_test.cc"; do
    local o="$OUT/x86_$(basename "${f%.cc}").o"
    g++ "${CXXFLAGS[@]}" -c "$f" -o "$o"
    objs+=("$o")
  done
  for o in "$OUT/x86_gemm.o" "$OUT/x86_thread_pool.o" "$OUT/x86_dispatch.o" "$OUT/x86_gemm_scalar.o" "$OUT/x86_scalar.o"; do
    if objdump -d "$o" | grep -q '%ymm'; then echo "AVX instructions found in baseline object $o" >&2; exit 1; fi
  done
  isa_objects "$ROOT" "$OUT/x86_" "${CXXFLAGS[@]}"
  g++ "${objs[@]}" "${ISA_OBJS[@]}" -pthread -o "$OUT/gemm_test_x86"
}

build_arm() {
  aarch64-linux-gnu-g++ "${CXXFLAGS[@]}" "${SRC_BASE[@]}" "$ROOT/native/kernels/gemm_neon.cc" "$ROOT/native/kernels/neon.cc" \
    "$ROOT/test/native/gemm_test.cc" -o "$OUT/gemm_test_arm64"
}

case "$mode" in
  --bench) build_x86; shift; "$OUT/gemm_test_x86" --bench "$@" ;;
  --x86) build_x86; "$OUT/gemm_test_x86" ;;
  --arm) build_arm; qemu-aarch64 -L /usr/aarch64-linux-gnu "$OUT/gemm_test_arm64" --quick ;;
  all|*)
    rc=0
    build_x86
    echo "== x86-64"
    "$OUT/gemm_test_x86" || rc=1
    build_arm
    echo "== arm64 (qemu)"
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$OUT/gemm_test_arm64" --quick || rc=1
    exit $rc
    ;;
esac
