// AVX-512F kernels: the same vector body as kernels_avx2.cpp with 512-bit
// ops and k-register masks. Only AVX-512F instructions are used, so any
// AVX-512 CPU (Skylake-SP and later, Zen 4 and later) runs them.

#include "math/detail/kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VEIL_HAVE_AVX512_KERNELS 1
#if defined(__clang__)
#include <immintrin.h>
#else
// GCC 12 warns falsely about _mm512_undefined_* inside its own header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#endif

namespace veil {
namespace math {
namespace detail {

#if defined(VEIL_HAVE_AVX512_KERNELS)

namespace {

#define VEIL_SIMD_TARGET __attribute__((target("avx512f"), always_inline)) inline

struct V {
  static constexpr std::size_t W = 8;
  using D = __m512d;
  using I = __m512i;
  using M = __mmask8;

  VEIL_SIMD_TARGET static D load(const double* p) { return _mm512_loadu_pd(p); }
  VEIL_SIMD_TARGET static void store(double* p, D v) { _mm512_storeu_pd(p, v); }
  // Narrow operands: float32 widens to float64 exactly; stores narrow values
  // that are exact in float32 (integers below 2^23), so neither rounds.
  VEIL_SIMD_TARGET static D load(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
  VEIL_SIMD_TARGET static void store(float* p, D v) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(v)); }
  VEIL_SIMD_TARGET static I loadi(const std::uint64_t* p) { return _mm512_loadu_si512(p); }
  VEIL_SIMD_TARGET static void storei(std::uint64_t* p, I v) { _mm512_storeu_si512(p, v); }
  VEIL_SIMD_TARGET static D dup(double x) { return _mm512_set1_pd(x); }
  VEIL_SIMD_TARGET static I dupi(std::uint64_t x) {
    return _mm512_set1_epi64(static_cast<long long>(x));
  }
  VEIL_SIMD_TARGET static D zero() { return _mm512_setzero_pd(); }
  VEIL_SIMD_TARGET static I zeroi() { return _mm512_setzero_si512(); }

  VEIL_SIMD_TARGET static D abs(D x) {
    return _mm512_castsi512_pd(
        _mm512_and_si512(_mm512_castpd_si512(x), _mm512_set1_epi64(0x7fffffffffffffffLL)));
  }
  VEIL_SIMD_TARGET static D add(D a, D b) { return _mm512_add_pd(a, b); }
  VEIL_SIMD_TARGET static D mul(D a, D b) { return _mm512_mul_pd(a, b); }
  // vmaxpd/vminpd: the second operand wins ties and NaN, as with AVX2.
  VEIL_SIMD_TARGET static D max(D a, D b) { return _mm512_max_pd(a, b); }
  VEIL_SIMD_TARGET static D min(D a, D b) { return _mm512_min_pd(a, b); }
  VEIL_SIMD_TARGET static D trunc(D x) {
    return _mm512_roundscale_pd(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  }
  VEIL_SIMD_TARGET static D round_even(D x) {
    return _mm512_roundscale_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }

  VEIL_SIMD_TARGET static M lt(D a, D b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  VEIL_SIMD_TARGET static M gt(D a, D b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  VEIL_SIMD_TARGET static M eq(D a, D b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
  VEIL_SIMD_TARGET static M mand(M a, M b) { return static_cast<M>(a & b); }
  VEIL_SIMD_TARGET static M mor(M a, M b) { return static_cast<M>(a | b); }
  VEIL_SIMD_TARGET static M mandnot(M a, M b) { return static_cast<M>(a & ~b); }
  VEIL_SIMD_TARGET static M mtrue() { return static_cast<M>(0xff); }
  VEIL_SIMD_TARGET static M mnone() { return static_cast<M>(0); }
  VEIL_SIMD_TARGET static bool any(M m) { return m != 0; }
  VEIL_SIMD_TARGET static unsigned count(M m) {
    return static_cast<unsigned>(__builtin_popcount(static_cast<unsigned>(m)));
  }
  VEIL_SIMD_TARGET static D blend(M m, D a, D b) { return _mm512_mask_blend_pd(m, a, b); }
  VEIL_SIMD_TARGET static I blendi(M m, I a, I b) { return _mm512_mask_blend_epi64(m, a, b); }
  // ReLU masks, one byte per lane: store 1 where m is set, else 0; load the
  // lanes whose byte is nonzero. vpmovqb narrows 64-bit lanes to bytes within
  // AVX-512F, which has no byte-granular mask stores (those are AVX-512BW).
  VEIL_SIMD_TARGET static void store_bytes(std::uint8_t* p, M m) {
    const __m128i b = _mm512_cvtepi64_epi8(_mm512_maskz_set1_epi64(m, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), b);
  }
  VEIL_SIMD_TARGET static M load_bytes(const std::uint8_t* p) {
    const __m512i w = _mm512_cvtepu8_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return _mm512_test_epi64_mask(w, w);
  }

  VEIL_SIMD_TARGET static I bits(D x) { return _mm512_castpd_si512(x); }
  VEIL_SIMD_TARGET static I andi(I a, I b) { return _mm512_and_si512(a, b); }
  VEIL_SIMD_TARGET static I ori(I a, I b) { return _mm512_or_si512(a, b); }
  VEIL_SIMD_TARGET static I addi(I a, I b) { return _mm512_add_epi64(a, b); }
  VEIL_SIMD_TARGET static I subi(I a, I b) { return _mm512_sub_epi64(a, b); }
  VEIL_SIMD_TARGET static I srlv(I a, I n) { return _mm512_srlv_epi64(a, n); }  // n > 63 gives 0
  VEIL_SIMD_TARGET static I mul32(I a, I b) { return _mm512_mul_epu32(a, b); }
  template <int k>
  VEIL_SIMD_TARGET static I srli(I a) { return _mm512_srli_epi64(a, k); }
  template <int k>
  VEIL_SIMD_TARGET static I slli(I a) { return _mm512_slli_epi64(a, k); }
};

#undef VEIL_SIMD_TARGET
#define VEIL_SIMD_TARGET __attribute__((target("avx512f")))
#include "math/detail/simd_body.h"
#undef VEIL_SIMD_TARGET

// The exact tile (kernels.h): 16 accumulators of 8 doubles, two b loads and
// eight broadcasts per depth step.
__attribute__((target("avx512f"))) void exact_tile(std::size_t depth, const double* a,
                                                   const double* b, double* c,
                                                   std::size_t ldc) {
  __m512d c00 = _mm512_setzero_pd(), c01 = _mm512_setzero_pd();
  __m512d c10 = _mm512_setzero_pd(), c11 = _mm512_setzero_pd();
  __m512d c20 = _mm512_setzero_pd(), c21 = _mm512_setzero_pd();
  __m512d c30 = _mm512_setzero_pd(), c31 = _mm512_setzero_pd();
  __m512d c40 = _mm512_setzero_pd(), c41 = _mm512_setzero_pd();
  __m512d c50 = _mm512_setzero_pd(), c51 = _mm512_setzero_pd();
  __m512d c60 = _mm512_setzero_pd(), c61 = _mm512_setzero_pd();
  __m512d c70 = _mm512_setzero_pd(), c71 = _mm512_setzero_pd();
  for (std::size_t p = 0; p < depth; ++p, a += kTileRows, b += kTileCols) {
    const __m512d b0 = _mm512_loadu_pd(b);
    const __m512d b1 = _mm512_loadu_pd(b + 8);
    __m512d ar = _mm512_set1_pd(a[0]);
    c00 = _mm512_fmadd_pd(ar, b0, c00);
    c01 = _mm512_fmadd_pd(ar, b1, c01);
    ar = _mm512_set1_pd(a[1]);
    c10 = _mm512_fmadd_pd(ar, b0, c10);
    c11 = _mm512_fmadd_pd(ar, b1, c11);
    ar = _mm512_set1_pd(a[2]);
    c20 = _mm512_fmadd_pd(ar, b0, c20);
    c21 = _mm512_fmadd_pd(ar, b1, c21);
    ar = _mm512_set1_pd(a[3]);
    c30 = _mm512_fmadd_pd(ar, b0, c30);
    c31 = _mm512_fmadd_pd(ar, b1, c31);
    ar = _mm512_set1_pd(a[4]);
    c40 = _mm512_fmadd_pd(ar, b0, c40);
    c41 = _mm512_fmadd_pd(ar, b1, c41);
    ar = _mm512_set1_pd(a[5]);
    c50 = _mm512_fmadd_pd(ar, b0, c50);
    c51 = _mm512_fmadd_pd(ar, b1, c51);
    ar = _mm512_set1_pd(a[6]);
    c60 = _mm512_fmadd_pd(ar, b0, c60);
    c61 = _mm512_fmadd_pd(ar, b1, c61);
    ar = _mm512_set1_pd(a[7]);
    c70 = _mm512_fmadd_pd(ar, b0, c70);
    c71 = _mm512_fmadd_pd(ar, b1, c71);
  }
  const __m512d acc[kTileRows][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                                     {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
  for (std::size_t r = 0; r < kTileRows; ++r) {
    double* row = c + r * ldc;
    _mm512_storeu_pd(row, _mm512_add_pd(_mm512_loadu_pd(row), acc[r][0]));
    _mm512_storeu_pd(row + 8, _mm512_add_pd(_mm512_loadu_pd(row + 8), acc[r][1]));
  }
}

const Kernels kAvx512 = {simd_matvec<double>,
                         simd_matvec2<double>,
                         simd_matvec_t<double>,
                         simd_quantize<double>,
                         simd_forward,
                         simd_backward,
                         simd_matvec<float>,
                         simd_matvec2<float>,
                         simd_matvec_t<float>,
                         simd_quantize<float>,
                         exact_tile};

}  // namespace

const Kernels* avx512_kernels() noexcept { return &kAvx512; }

#else

const Kernels* avx512_kernels() noexcept { return nullptr; }

#endif

}  // namespace detail
}  // namespace math
}  // namespace veil
