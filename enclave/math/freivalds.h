#pragma once
/**
 * @file freivalds.h
 * Freivalds checks of device products over F_q, q = 2^61 - 1.
 *
 * Matrices are row-major, integer-valued float64 (leading dimension `ld` in
 * elements, ld >= cols unless rows <= 1); field vectors hold uint64_t in
 * [0, q). Every element read from a matrix is range-checked first: finite,
 * integral and |x| < 2^53, so any error E of an accepted value satisfies
 * 0 < |E| < 2^54 < q and cannot vanish mod q. Failures name the first bad
 * element in row-major order (fault, row, col); range faults take precedence
 * over mismatches, and a mismatch names its row (col = npos).
 *
 * Soundness (docs/arithmetic.md): a wrong product passes a check with
 * probability <= 1/q over a uniform secret s.
 */

#include <cstddef>
#include <cstdint>

#include "math/status.h"

namespace veil {
namespace math {

/**
 * @name Matrix-vector products mod q
 * Each takes a float64 matrix of device values (T = double) or a narrow
 * operand (T = float): the operands the enclave quantizes itself (activations
 * A, gradients dZ) may be kept as float32, row-major, every element an integer
 * with |x| < 2^23, which float32 holds exactly. Their range is tighter than
 * the float64 device values' (|x| < 2^53): the first element in row-major
 * order that is NaN or +-Inf (not_finite), not an integer (not_integral) or
 * at least 2^23 in magnitude (out_of_range) is reported as a fault. On valid
 * input the results are those of float64 input with the same values, bit for
 * bit, on every kernel path; arguments are validated the same way.
 */
///@{
/** out[i] = sum_j x[i][j] * v[j] mod q (length rows); x is range-checked. */
template <class T>
Status matvec_mod(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                  const std::uint64_t* v, std::uint64_t* out) noexcept;

/**
 * matvec_mod with two vectors in one pass over x: out1 = x v1 and out2 = x v2
 * (mod q), the same values and faults as two calls.
 */
template <class T>
Status matvec2_mod(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                   const std::uint64_t* v1, const std::uint64_t* v2, std::uint64_t* out1,
                   std::uint64_t* out2) noexcept;

/** out[j] = sum_i x[i][j] * y[i] mod q (length cols), i.e. x^T y; x is range-checked. */
template <class T>
Status matvec_t_mod(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                    const std::uint64_t* y, std::uint64_t* out) noexcept;
///@}

/**
 * Export check of a downloaded weight matrix M (rows x cols) against its
 * fingerprints: M s == v (length rows) and M^T t == w (length cols). A failing
 * row of M s is reported as (mismatch, row, npos), a failing entry of M^T t as
 * (mismatch, npos, col).
 */
Status fingerprint_check(const double* m, std::size_t rows, std::size_t cols, std::size_t ld,
                         const std::uint64_t* s, const std::uint64_t* v, const std::uint64_t* t,
                         const std::uint64_t* w) noexcept;

}  // namespace math
}  // namespace veil
