# Sourced by test/native/run.sh and gemm_run.sh: compiles the x86-64 per-ISA kernel files with the
# flags CMakeLists.txt gives them (avx2.cc and gemm_avx2.cc: -mavx2 -mfma -mf16c; avx512.cc and
# gemm_avx512.cc: -mavx512f on top; everything else stays baseline).
#   isa_objects <repo root> <object path prefix> <compiler flags...>   -> ISA_OBJS (array of .o)
isa_objects() {
  local root=$1 prefix=$2 f
  shift 2
  ISA_OBJS=()
  for f in avx2 gemm_avx2; do
    g++ "$@" -mavx2 -mfma -mf16c -c "$root/native/kernels/$f.cc" -o "$prefix$f.o"
    ISA_OBJS+=("$prefix$f.o")
  done
  for f in avx512 gemm_avx512; do
    g++ "$@" -mavx512f -mavx2 -mfma -mf16c -c "$root/native/kernels/$f.cc" -o "$prefix$f.o"
    ISA_OBJS+=("$prefix$f.o")
  done
}
