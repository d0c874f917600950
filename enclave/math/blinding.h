#pragma once
/**
 * @file blinding.h
 * One-time-pad helpers for private inference (docs/design.md §4.1) over the
 * blinding field F_pb, p_b = 2^48 - 59 (field.h).
 *
 * The enclave sends X~ = X_q + R mod p_b with R uniform in [0, p_b); X~ is
 * split into two 24-bit limbs so each device product X~_limb * W_q stays an
 * exact float64 integer: (2^24 - 1) * max_j ||W_q[:, j]||_1 < 2^53. The
 * device returns Y~_lo and Y~_hi; the enclave recombines them mod p_b,
 * subtracts U = R * W_q mod p_b and centres the result, which equals
 * Y = X_q * W_q whenever |Y| < p_b / 2. docs/arithmetic.md has the budget.
 * The Freivalds check of each limb product (freivalds.h) is the caller's.
 */

#include <cstddef>
#include <cstdint>

#include "math/field.h"
#include "math/status.h"

namespace veil {
namespace math {

/** Bits per limb of a blinded value: X~ = lo + 2^24 * hi, lo and hi < 2^24. */
constexpr int kBlindLimbBits = 24;

/** 2^24 as a double. */
constexpr double kBlindLimbBase = 16777216.0;

/** True if limb products are exact: (2^24 - 1) * w_col_l1_max < 2^53. */
constexpr bool blind_limbs_exact(double w_col_l1_max) noexcept {
  return w_col_l1_max >= 0 && (kBlindLimbBase - 1.0) * w_col_l1_max < kExactLimit;
}

/** True if |Y| <= x_abs_max * w_col_l1_max < p_b / 2, so unmasking is unique. */
constexpr bool blind_result_recoverable(double x_abs_max, double w_col_l1_max) noexcept {
  return x_abs_max >= 0 && w_col_l1_max >= 0 &&
         x_abs_max * w_col_l1_max < static_cast<double>(FieldPb::modulus / 2);
}

/**
 * Masks X_q (rows x cols, integers |x| < 2^53) with R (same shape, entries in
 * [0, p_b), leading dimension ldr): X~ = X_q + R mod p_b, written as limbs
 * lo = X~ mod 2^24 and hi = X~ >> 24 (integer-valued doubles, ld = ldo).
 * Faults: range faults of X_q; invalid_argument (with row, col) for R >= p_b.
 */
Status blind(const double* xq, std::size_t rows, std::size_t cols, std::size_t ldx,
             const std::uint64_t* r, std::size_t ldr, double* lo, double* hi,
             std::size_t ldo) noexcept;

/**
 * The unmasking term U = R * W mod p_b, the offline O(rows * inner * cols)
 * step of private inference, as an exact float64 GEMM (docs/design.md §4.1):
 * R = R_lo + 2^24 R_hi with limbs below 2^24, so every partial sum of
 * R_limb * W is at most (2^24 - 1) * ||W[:, j]||_1 < 2^53 (the bound
 * pack_correction_weights checks) and exact in any order; one reduction mod
 * p_b per element joins the two limb products. Rows are independent, so a
 * caller may split R into row blocks (one work buffer each) and get the same
 * U whatever the split.
 */

/** Doubles of W (inner x cols) packed for blind_correction. */
std::size_t correction_panel_doubles(std::size_t inner, std::size_t cols) noexcept;

/**
 * Pack integer-valued W (inner x cols) into `panels` (correction_panel_doubles).
 * Faults: range faults of W (with row, col); out_of_range (col = the column)
 * when (2^24 - 1) * ||W[:, col]||_1 reaches 2^53.
 */
Status pack_correction_weights(const double* w, std::size_t inner, std::size_t cols,
                               std::size_t ldw, double* panels) noexcept;

/** Doubles of work buffer blind_correction needs for `rows` rows of R. */
std::size_t correction_work_doubles(std::size_t rows, std::size_t inner) noexcept;

/**
 * U (rows x cols) = R (rows x inner, entries in [0, p_b)) * W mod p_b, W
 * packed by pack_correction_weights. Fault: invalid_argument (with row, col)
 * for R >= p_b.
 */
Status blind_correction(const std::uint64_t* r, std::size_t rows, std::size_t inner,
                        std::size_t ldr, const double* panels, std::size_t cols,
                        std::uint64_t* u, std::size_t ldu, double* work) noexcept;

/**
 * Y = centre((Y~_lo + 2^24 * Y~_hi - U) mod p_b), as integer-valued doubles
 * (|Y| <= p_b / 2 < 2^47). The limb results come from the device and are
 * range-checked (a fault names its element).
 */
Status unblind(const double* y_lo, const double* y_hi, std::size_t rows, std::size_t cols,
               std::size_t ldy, const std::uint64_t* u, std::size_t ldu, double* y,
               std::size_t ld_out) noexcept;

}  // namespace math
}  // namespace veil
