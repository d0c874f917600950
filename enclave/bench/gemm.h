#pragma once
// The enclave's own float32 GEMM: blocked, packed, vectorized (AVX2+FMA when
// the CPU has it), single-threaded, no BLAS — what an SGX enclave would run
// for work it keeps inside. It is the "everything in the enclave" baseline of
// the benchmarks (docs/design.md §7 (b)), so it has to be fast, not a strawman.
#include <cstddef>

namespace veil::enclave::bench {

/** A row-major matrix operand, optionally used transposed. */
struct GemmOperand {
  const float* data;
  size_t ld;         ///< row stride of the stored matrix
  bool transposed;   ///< use the stored matrix transposed
};

/**
 * C (m x n, row stride ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C.
 * beta == 0 overwrites C without reading it.
 */
void sgemm(size_t m, size_t n, size_t k, float alpha, GemmOperand a, GemmOperand b, float beta,
           float* c, size_t ldc);

/** True when sgemm uses the AVX2+FMA kernel on this CPU. */
bool sgemm_uses_avx2();

}  // namespace veil::enclave::bench
