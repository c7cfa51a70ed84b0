#!/usr/bin/env bash
# Builds and runs the standalone native kernel test (test/native/sdpa_kernels_test.cc) without Node:
#   x86-64: scalar + avx2 + avx512 (avx2.cc and gemm_avx2.cc get -mavx2 -mfma -mf16c, avx512.cc and
#           gemm_avx512.cc -mavx512f on top, everything else baseline; the GEMM tables are linked
#           because each kernel set of native/dispatch.cc holds one);
#   arm64:  scalar + neon, cross-compiled with aarch64-linux-gnu-g++ and run under qemu-aarch64,
#           when those tools exist.
# Arguments go to the test binary (e.g. --bench, --quick); the arm64 run skips --bench.
# QKV_SANITIZE=1 adds -fsanitize=address,undefined to the native x86-64 build.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${QKV_NATIVE_TEST_OUT:-${TMPDIR:-/tmp}/qkv-native-test}"  # outside build/: cmake-js rebuild wipes that
mkdir -p "$out"
source "$root/test/native/isa_objects.sh"
flags=(-O2 -std=c++17 -Wall -Wextra -pthread -I"$root/native")
if [[ "${QKV_SANITIZE:-0}" == 1 ]]; then
  flags+=(-g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
fi
common=("$root/native/attention.cc" "$root/native/dispatch.cc" "$root/native/thread_pool.cc"
        "$root/native/kernels/scalar.cc" "$root/native/kernels/gemm_scalar.cc"
        "$root/test/native/sdpa_kernels_test.cc")
status=0

if [[ "$(uname -m)" == x86_64 ]]; then
  echo "== x86-64 (scalar + avx2 + avx512 where the CPU has them)"
  isa_objects "$root" "$out/" "${flags[@]}"
  g++ "${flags[@]}" "${common[@]}" "${ISA_OBJS[@]}" -o "$out/sdpa_kernels_test"
  "$out/sdpa_kernels_test" "$@" || status=1
fi

bench=0
for arg in "$@"; do [[ "$arg" == --bench ]] && bench=1; done
if command -v aarch64-linux-gnu-g++ > /dev/null; then
  echo "== arm64 (scalar + neon)"
  aarch64-linux-gnu-g++ -O2 -std=c++17 -Wall -Wextra -pthread -I"$root/native" "${common[@]}" \
    "$root/native/kernels/neon.cc" "$root/native/kernels/gemm_neon.cc" -o "$out/sdpa_kernels_test_arm64"
  if [[ $bench == 1 ]]; then
    echo "(skipping the arm64 benchmark: timings under qemu mean nothing)"
  elif command -v qemu-aarch64 > /dev/null; then
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/sdpa_kernels_test_arm64" "$@" || status=1
  else
    echo "(qemu-aarch64 not found: arm64 build checked, not run)"
  fi
else
  echo "(aarch64-linux-gnu-g++ not found: arm64 not checked)"
fi
exit $status
