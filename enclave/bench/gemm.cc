#include "gemm.h"

#include <algorithm>

#include "math/parallel.h"
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace veil::enclave::bench {
namespace {

// Micro-tile 6 x 16 (12 AVX2 accumulators); cache blocks sized for a 32 KiB L1
// and a 512 KiB L2: an A block of kMc x kKc floats and a B panel of kKc x kNc.
constexpr size_t kMr = 6;
constexpr size_t kNr = 16;
constexpr size_t kKc = 256;
constexpr size_t kMc = 96;
constexpr size_t kNc = 512;

inline float element(const GemmOperand& x, size_t row, size_t col) {
  return x.transposed ? x.data[col * x.ld + row] : x.data[row * x.ld + col];
}

// A block (rows i0.., depth p0..) into kMr-row panels, p-major, scaled by alpha;
// rows past the edge are zero so the kernel never branches on them.
void pack_a(const GemmOperand& a, size_t i0, size_t mc, size_t p0, size_t kc, float alpha,
            float* out) {
  for (size_t ib = 0; ib < mc; ib += kMr) {
    const size_t rows = std::min(kMr, mc - ib);
    for (size_t p = 0; p < kc; ++p)
      for (size_t r = 0; r < kMr; ++r)
        *out++ = r < rows ? alpha * element(a, i0 + ib + r, p0 + p) : 0.0f;
  }
}

// B panel (depth p0.., columns j0..) into kNr-column strips, p-major.
void pack_b(const GemmOperand& b, size_t p0, size_t kc, size_t j0, size_t nc, float* out) {
  for (size_t jb = 0; jb < nc; jb += kNr) {
    const size_t cols = std::min(kNr, nc - jb);
    for (size_t p = 0; p < kc; ++p) {
      if (!b.transposed && cols == kNr) {
        std::memcpy(out, b.data + (p0 + p) * b.ld + j0 + jb, kNr * sizeof(float));
        out += kNr;
      } else {
        for (size_t c = 0; c < kNr; ++c) *out++ = c < cols ? element(b, p0 + p, j0 + jb + c) : 0.0f;
      }
    }
  }
}

// C tile (rows x cols <= 6 x 16) += packed A panel * packed B strip.
void kernel_portable(size_t kc, const float* a, const float* b, float* c, size_t ldc, size_t rows,
                     size_t cols) {
  float acc[kMr][kNr] = {};
  for (size_t p = 0; p < kc; ++p, a += kMr, b += kNr)
    for (size_t r = 0; r < kMr; ++r)
      for (size_t j = 0; j < kNr; ++j) acc[r][j] += a[r] * b[j];
  for (size_t r = 0; r < rows; ++r)
    for (size_t j = 0; j < cols; ++j) c[r * ldc + j] += acc[r][j];
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void kernel_avx2(size_t kc, const float* a, const float* b,
                                                     float* c, size_t ldc, size_t rows,
                                                     size_t cols) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (size_t p = 0; p < kc; ++p, a += kMr, b += kNr) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    __m256 ar = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ar, b0, c00);
    c01 = _mm256_fmadd_ps(ar, b1, c01);
    ar = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ar, b0, c10);
    c11 = _mm256_fmadd_ps(ar, b1, c11);
    ar = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ar, b0, c20);
    c21 = _mm256_fmadd_ps(ar, b1, c21);
    ar = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ar, b0, c30);
    c31 = _mm256_fmadd_ps(ar, b1, c31);
    ar = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ar, b0, c40);
    c41 = _mm256_fmadd_ps(ar, b1, c41);
    ar = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ar, b0, c50);
    c51 = _mm256_fmadd_ps(ar, b1, c51);
  }
  alignas(32) float acc[kMr][kNr];
  _mm256_store_ps(acc[0], c00), _mm256_store_ps(acc[0] + 8, c01);
  _mm256_store_ps(acc[1], c10), _mm256_store_ps(acc[1] + 8, c11);
  _mm256_store_ps(acc[2], c20), _mm256_store_ps(acc[2] + 8, c21);
  _mm256_store_ps(acc[3], c30), _mm256_store_ps(acc[3] + 8, c31);
  _mm256_store_ps(acc[4], c40), _mm256_store_ps(acc[4] + 8, c41);
  _mm256_store_ps(acc[5], c50), _mm256_store_ps(acc[5] + 8, c51);
  if (cols == kNr) {
    for (size_t r = 0; r < rows; ++r) {
      float* row = c + r * ldc;
      _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), _mm256_load_ps(acc[r])));
      _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), _mm256_load_ps(acc[r] + 8)));
    }
  } else {
    for (size_t r = 0; r < rows; ++r)
      for (size_t j = 0; j < cols; ++j) c[r * ldc + j] += acc[r][j];
  }
}
#endif

using Kernel = void (*)(size_t, const float*, const float*, float*, size_t, size_t, size_t);

Kernel pick_kernel() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kernel_avx2;
#endif
  return kernel_portable;
}

}  // namespace

bool sgemm_uses_avx2() {
#if defined(__x86_64__)
  return pick_kernel() == kernel_avx2;
#else
  return false;
#endif
}

void sgemm(size_t m, size_t n, size_t k, float alpha, GemmOperand a, GemmOperand b, float beta,
           float* c, size_t ldc) {
  if (beta == 0.0f) {
    for (size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
  } else if (beta != 1.0f) {
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n; ++j) c[i * ldc + j] *= beta;
  }
  if (m == 0 || n == 0 || k == 0 || alpha == 0.0f) return;
  static const Kernel kernel = pick_kernel();
  std::vector<float> packed_b(((std::min(n, kNc) + kNr - 1) / kNr) * kNr * kKc);
  // The row blocks of C (kMc rows) run on the session's threads (math/parallel.h),
  // each with its own packed A; every element of C sums in the same order on any
  // number of threads.
  const size_t row_blocks = (m + kMc - 1) / kMc;
  std::vector<float> packed_a(std::min(row_blocks, math::kMaxBlocks) * kMc * kKc);
  for (size_t j0 = 0; j0 < n; j0 += kNc) {
    const size_t nc = std::min(kNc, n - j0);
    for (size_t p0 = 0; p0 < k; p0 += kKc) {
      const size_t kc = std::min(kKc, k - p0);
      pack_b(b, p0, kc, j0, nc, packed_b.data());
      const size_t per_block = (row_blocks + math::kMaxBlocks - 1) / math::kMaxBlocks;
      const math::RowBlocks rb{row_blocks, per_block, (row_blocks + per_block - 1) / per_block};
      auto block = [&](size_t blk) {
        float* pa = packed_a.data() + blk * kMc * kKc;
        for (size_t i0 = rb.begin(blk) * kMc; i0 < std::min(m, rb.end(blk) * kMc); i0 += kMc) {
          const size_t mc = std::min(kMc, m - i0);
          pack_a(a, i0, mc, p0, kc, alpha, pa);
          for (size_t jb = 0; jb < nc; jb += kNr) {
            const float* bp = packed_b.data() + (jb / kNr) * kNr * kc;
            for (size_t ib = 0; ib < mc; ib += kMr)
              kernel(kc, pa + (ib / kMr) * kMr * kc, bp, c + (i0 + ib) * ldc + j0 + jb, ldc,
                     std::min(kMr, mc - ib), std::min(kNr, nc - jb));
          }
        }
      };
      math::parallel_for(rb.count, block);
    }
  }
}

}  // namespace veil::enclave::bench
