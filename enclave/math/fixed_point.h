#pragma once
/**
 * @file fixed_point.h
 * The fixed-point codec (docs/design.md §3): a real x becomes the integer
 * x_q = round_half_even(x * 2^f), clipped to |x_q| <= limit, stored in a double
 * (the device computes exact integer products in float64).
 *
 * Rounding is round-half-to-even and independent of the FPU rounding mode.
 * Values that do not fit saturate to +-limit and are counted, never wrapped.
 * Round trip: |quantize(x) * 2^-f - x| <= 2^-(f+1) whenever |x| <= limit * 2^-f.
 */

#include <cstddef>
#include <cstdint>

#include "math/status.h"

namespace veil {
namespace math {

/** A fixed-point format: value = integer * 2^-frac_bits, |value| <= clip. */
struct FixedFormat {
  int frac_bits = 8;  ///< f, in [0, 62]; defaults: activations 8, gradients 12
  double clip = 0;    ///< largest magnitude in real units (> 0); larger values saturate
};

/** Result of a pass that quantizes: its status and how many values saturated. */
struct PassResult {
  Status status;
  std::size_t saturated = 0;  ///< values clipped to +-limit (NaN inputs of quantize() too)
};

/**
 * Magnitudes of a quantized matrix, gathered by the pass that writes it: the
 * exactness and soundness bounds of the product it enters (docs/design.md §3) need
 * them, and a second pass over the matrix would cost as much as the first.
 */
struct OperandStats {
  /**
   * Optional, length cols: set to sum_i |out[i][j]|. A pass cut into row
   * blocks (parallel.h) sums each block in row order and adds the blocks'
   * sums in block order: the same bits for any thread count, and the row-order
   * sum's bits while rows * limit < 2^53 (every partial sum is then exact).
   */
  double* col_l1 = nullptr;
  /**
   * With col_l1: (kMaxBlocks - 1) * cols doubles where the blocks after the
   * first keep their column sums until they are added. Without it, a pass
   * that sums columns runs as one block.
   */
  double* col_scratch = nullptr;
  /**
   * max_i sum_j |out[i][j]|. The summation order is unspecified, so the value
   * is exact (and the same on every kernel path) only when cols * limit < 2^53.
   */
  double row_l1_max = 0;
  double max_abs = 0;  ///< max |out[i][j]|
  /** quantize() only: inputs that were NaN or +-Inf, so a caller need not scan them first. */
  std::size_t non_finite = 0;
};

/**
 * Narrow operands (freivalds.h) are float32 integers below this in magnitude:
 * every such value is exact in float32, and a chunk of them takes the vector
 * kernels' float64 path exactly (docs/arithmetic.md section 2).
 */
constexpr double kNarrowLimit = 8388608.0;  // 2^23

/** True if frac_bits is in [0, 62] and clip is finite and positive. */
bool fixed_format_valid(FixedFormat fmt) noexcept;

/**
 * The largest integer magnitude of the format: floor(clip * 2^f), capped at
 * 2^53 - 1 so every quantized value is an exact float64 integer. Returns -1
 * for an invalid format.
 */
double fixed_limit(FixedFormat fmt) noexcept;

/**
 * Quantizes a row-major float64 matrix (leading dimensions in elements) into
 * float64 (TOut = double) or into a narrow operand (TOut = float, freivalds.h)
 * for the passes and copies that read it, filling *stats (if non-null) with
 * the magnitudes of out. NaN becomes 0 and counts as saturated; +-Inf
 * saturates to +-limit. Values, saturation count and *stats do not depend on
 * TOut. Fails (invalid_argument) on a bad format, null pointers or ld < cols,
 * and for float output also when fixed_limit(fmt) >= 2^23, where outputs could
 * not be narrow.
 */
template <class TOut>
PassResult quantize(const double* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                    FixedFormat fmt, TOut* out, std::size_t ldo,
                    OperandStats* stats = nullptr) noexcept;

}  // namespace math
}  // namespace veil
