// <immintrin.h> for the AVX-512 translation units. GCC 12's avx512fintrin.h trips
// -Wuninitialized on its own _mm512_undefined_* helpers (a false positive fixed in later GCC),
// which would fail the -Werror build; the warning is silenced for the header's lines only.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
