// AVX2 kernels: the ops struct below maps the vector body onto 256-bit
// intrinsics. Only these functions carry the avx2 target, so the rest of the
// library (and any inline function it shares) stays baseline x86-64.

#include "math/detail/kernels.h"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VEIL_HAVE_AVX2_KERNELS 1
#include <immintrin.h>
#endif

namespace veil {
namespace math {
namespace detail {

#if defined(VEIL_HAVE_AVX2_KERNELS)

namespace {

// kLaneBytes.v[m]: byte k (little-endian) is bit k of the 4-lane movemask m,
// so one load turns a lane mask into ReLU mask bytes.
struct LaneBytes {
  std::uint32_t v[16] = {};
  constexpr LaneBytes() {
    for (unsigned m = 0; m < 16; ++m)
      for (unsigned k = 0; k < 4; ++k) v[m] |= ((m >> k) & 1u) << (8 * k);
  }
};
constexpr LaneBytes kLaneBytes{};

#define VEIL_SIMD_TARGET __attribute__((target("avx2"), always_inline)) inline

struct V {
  static constexpr std::size_t W = 4;
  using D = __m256d;
  using I = __m256i;
  using M = __m256d;  // lane masks are all-ones / all-zeros doubles

  VEIL_SIMD_TARGET static D load(const double* p) { return _mm256_loadu_pd(p); }
  VEIL_SIMD_TARGET static void store(double* p, D v) { _mm256_storeu_pd(p, v); }
  // Narrow operands: float32 widens to float64 exactly; stores narrow values
  // that are exact in float32 (integers below 2^23), so neither rounds.
  VEIL_SIMD_TARGET static D load(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
  VEIL_SIMD_TARGET static void store(float* p, D v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }
  VEIL_SIMD_TARGET static I loadi(const std::uint64_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  VEIL_SIMD_TARGET static void storei(std::uint64_t* p, I v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  }
  VEIL_SIMD_TARGET static D dup(double x) { return _mm256_set1_pd(x); }
  VEIL_SIMD_TARGET static I dupi(std::uint64_t x) {
    return _mm256_set1_epi64x(static_cast<long long>(x));
  }
  VEIL_SIMD_TARGET static D zero() { return _mm256_setzero_pd(); }
  VEIL_SIMD_TARGET static I zeroi() { return _mm256_setzero_si256(); }

  VEIL_SIMD_TARGET static D abs(D x) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), x); }
  VEIL_SIMD_TARGET static D add(D a, D b) { return _mm256_add_pd(a, b); }
  VEIL_SIMD_TARGET static D mul(D a, D b) { return _mm256_mul_pd(a, b); }
  VEIL_SIMD_TARGET static D max(D a, D b) { return _mm256_max_pd(a, b); }
  VEIL_SIMD_TARGET static D min(D a, D b) { return _mm256_min_pd(a, b); }
  VEIL_SIMD_TARGET static D trunc(D x) {
    return _mm256_round_pd(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  }
  VEIL_SIMD_TARGET static D round_even(D x) {
    return _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }

  VEIL_SIMD_TARGET static M lt(D a, D b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  VEIL_SIMD_TARGET static M gt(D a, D b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  VEIL_SIMD_TARGET static M eq(D a, D b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
  VEIL_SIMD_TARGET static M mand(M a, M b) { return _mm256_and_pd(a, b); }
  VEIL_SIMD_TARGET static M mor(M a, M b) { return _mm256_or_pd(a, b); }
  VEIL_SIMD_TARGET static M mandnot(M a, M b) { return _mm256_andnot_pd(b, a); }  // a & ~b
  VEIL_SIMD_TARGET static M mtrue() { return _mm256_castsi256_pd(_mm256_set1_epi64x(-1)); }
  VEIL_SIMD_TARGET static M mnone() { return _mm256_setzero_pd(); }
  VEIL_SIMD_TARGET static bool any(M m) { return _mm256_movemask_pd(m) != 0; }
  VEIL_SIMD_TARGET static unsigned count(M m) {
    return static_cast<unsigned>(__builtin_popcount(_mm256_movemask_pd(m)));
  }
  VEIL_SIMD_TARGET static D blend(M m, D a, D b) { return _mm256_blendv_pd(a, b, m); }
  VEIL_SIMD_TARGET static I blendi(M m, I a, I b) {
    return _mm256_castpd_si256(
        _mm256_blendv_pd(_mm256_castsi256_pd(a), _mm256_castsi256_pd(b), m));
  }
  // ReLU masks, one byte per lane: store 1 where m is set, else 0; load the
  // lanes whose byte is nonzero (zero-extended bytes are > 0 exactly then).
  VEIL_SIMD_TARGET static void store_bytes(std::uint8_t* p, M m) {
    const std::uint32_t b = kLaneBytes.v[_mm256_movemask_pd(m)];
    std::memcpy(p, &b, sizeof b);
  }
  VEIL_SIMD_TARGET static M load_bytes(const std::uint8_t* p) {
    std::int32_t b;
    std::memcpy(&b, p, sizeof b);
    const __m256i w = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(b));
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(w, _mm256_setzero_si256()));
  }

  VEIL_SIMD_TARGET static I bits(D x) { return _mm256_castpd_si256(x); }
  VEIL_SIMD_TARGET static I andi(I a, I b) { return _mm256_and_si256(a, b); }
  VEIL_SIMD_TARGET static I ori(I a, I b) { return _mm256_or_si256(a, b); }
  VEIL_SIMD_TARGET static I addi(I a, I b) { return _mm256_add_epi64(a, b); }
  VEIL_SIMD_TARGET static I subi(I a, I b) { return _mm256_sub_epi64(a, b); }
  VEIL_SIMD_TARGET static I srlv(I a, I n) { return _mm256_srlv_epi64(a, n); }  // n > 63 gives 0
  VEIL_SIMD_TARGET static I mul32(I a, I b) { return _mm256_mul_epu32(a, b); }
  template <int k>
  VEIL_SIMD_TARGET static I srli(I a) { return _mm256_srli_epi64(a, k); }
  template <int k>
  VEIL_SIMD_TARGET static I slli(I a) { return _mm256_slli_epi64(a, k); }
};

#undef VEIL_SIMD_TARGET
// The kernels themselves are not forced inline, only given the target.
#define VEIL_SIMD_TARGET __attribute__((target("avx2")))
#include "math/detail/simd_body.h"
#undef VEIL_SIMD_TARGET

// The exact tile (kernels.h) as four 4 x 8 quarters: 8 accumulators, two b
// loads and four broadcasts per depth step leave registers for both.
__attribute__((target("avx2,fma"))) void exact_quarter(std::size_t depth, const double* a,
                                                       const double* b, double* c,
                                                       std::size_t ldc) {
  __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
  __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
  __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
  __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
  for (std::size_t p = 0; p < depth; ++p, a += kTileRows, b += kTileCols) {
    const __m256d b0 = _mm256_loadu_pd(b);
    const __m256d b1 = _mm256_loadu_pd(b + 4);
    __m256d ar = _mm256_broadcast_sd(a + 0);
    c00 = _mm256_fmadd_pd(ar, b0, c00);
    c01 = _mm256_fmadd_pd(ar, b1, c01);
    ar = _mm256_broadcast_sd(a + 1);
    c10 = _mm256_fmadd_pd(ar, b0, c10);
    c11 = _mm256_fmadd_pd(ar, b1, c11);
    ar = _mm256_broadcast_sd(a + 2);
    c20 = _mm256_fmadd_pd(ar, b0, c20);
    c21 = _mm256_fmadd_pd(ar, b1, c21);
    ar = _mm256_broadcast_sd(a + 3);
    c30 = _mm256_fmadd_pd(ar, b0, c30);
    c31 = _mm256_fmadd_pd(ar, b1, c31);
  }
  const __m256d acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
  for (std::size_t r = 0; r < 4; ++r) {
    double* row = c + r * ldc;
    _mm256_storeu_pd(row, _mm256_add_pd(_mm256_loadu_pd(row), acc[r][0]));
    _mm256_storeu_pd(row + 4, _mm256_add_pd(_mm256_loadu_pd(row + 4), acc[r][1]));
  }
}

void exact_tile(std::size_t depth, const double* a, const double* b, double* c, std::size_t ldc) {
  for (std::size_t h = 0; h < kTileRows; h += 4)
    for (std::size_t g = 0; g < kTileCols; g += 8)
      exact_quarter(depth, a + h, b + g, c + h * ldc + g, ldc);
}

const Kernels kAvx2 = {simd_matvec<double>,
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

const Kernels* avx2_kernels() noexcept { return &kAvx2; }

#else

const Kernels* avx2_kernels() noexcept { return nullptr; }

#endif

}  // namespace detail
}  // namespace math
}  // namespace veil
