#pragma once
/**
 * @file scalar.h
 * Internal: scalar building blocks shared by every kernel path. The vector
 * kernels use them for row tails and for the transcendental activations; each
 * helper mirrors the exact sequence of IEEE operations of its vector
 * counterpart, so all paths produce bit-identical results.
 */

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "math/activation.h"
#include "math/field.h"
#include "math/fixed_point.h"
#include "math/status.h"

namespace veil {
namespace math {
namespace detail {

/** A matrix argument is usable if it is empty, or present with ld >= cols. */
inline bool matrix_ok(const void* p, std::size_t rows, std::size_t cols, std::size_t ld) noexcept {
  if (rows == 0 || cols == 0) return true;
  return p != nullptr && (rows == 1 || ld >= cols);
}

/** A vector argument is usable if it is empty, or present. */
inline bool vector_ok(const void* p, std::size_t n) noexcept { return n == 0 || p != nullptr; }

/** Range check of one device value: finite, |x| < 2^53, integral. */
inline Fault classify(double x) noexcept {
  // fabs, not a compare on the sign: random signs would defeat a branch
  // predictor, and a compare is what GCC emits for a widened float's sign.
  const double ax = std::fabs(x);
  if (!(ax <= 1.7976931348623157e308)) return Fault::not_finite;  // NaN or +-Inf
  if (!(ax < kExactLimit)) return Fault::out_of_range;
  // |x| < 2^53 < 2^63, so the conversion is exact truncation.
  if (static_cast<double>(static_cast<std::int64_t>(ax)) != ax) return Fault::not_integral;
  return Fault::none;
}


/**
 * Range check of one narrow operand: finite, |x| < 2^23, integral. Floats of
 * 2^23 and more are all integers, so the float64 check's verdicts (which test
 * integrality last) carry over, and only the tighter bound is added.
 */
inline Fault classify(float x) noexcept {
  const double d = x;  // exact
  const Fault f = classify(d);
  if (f != Fault::none) return f;
  return std::fabs(d) < kNarrowLimit ? Fault::none : Fault::out_of_range;
}

/** The first element classify() rejects, in row-major order; success if none. */
template <class T>
inline Status first_range_fault(const T* x, std::size_t rows, std::size_t cols,
                                std::size_t ld) noexcept {
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      const Fault f = classify(x[i * ld + j]);
      if (f != Fault::none) return Status::at(f, i, j);
    }
  }
  return Status::success();
}

/** Integer value of a double that passed classify(). */
inline std::int64_t to_int(double x) noexcept { return static_cast<std::int64_t>(x); }

/**
 * Round half to even without consulting the FPU rounding mode. Branch-free:
 * the fraction of random data would defeat a branch predictor.
 */
inline double round_half_even(double y) noexcept {
  const double ay = y < 0 ? -y : y;
  if (!(ay < 4503599627370496.0)) return y;  // >= 2^52 (or NaN): already integral
  const std::int64_t t = static_cast<std::int64_t>(y);  // truncates toward zero
  const double frac = y - static_cast<double>(t);        // exact
  const std::int64_t odd = t & 1;
  const std::int64_t up = (frac > 0.5) | ((frac == 0.5) & odd);
  const std::int64_t down = (frac < -0.5) | ((frac == -0.5) & odd);
  // Rounding never flips the sign, so copysign only matters for zero, where
  // it keeps the sign a vector round keeps (-0.3 -> -0).
  return std::copysign(static_cast<double>(t + up - down), y);
}

/** Clip bounds of a quantizer: limit and limit + 1 (both exact). */
struct Quantizer {
  double limit;
  double limit1;
};

/** IEEE maxpd/minpd semantics: the second operand wins ties and NaN. */
inline double vmax(double a, double b) noexcept { return a > b ? a : b; }
inline double vmin(double a, double b) noexcept { return a < b ? a : b; }

/**
 * Quantizes y (already multiplied by 2^f): clamp to +-(limit+1), round half
 * even, count and clip what exceeds +-limit, and turn -0 into +0.
 */
inline double quantize_scaled(double y, const Quantizer& qz, std::size_t* saturated) noexcept {
  y = vmin(vmax(y, -qz.limit1), qz.limit1);
  double r = round_half_even(y);
  *saturated += (r > qz.limit) | (r < -qz.limit);
  r = vmin(vmax(r, -qz.limit), qz.limit);
  return r + 0.0;
}

/** False for NaN and +-Inf. */
inline bool is_finite(double x) noexcept {
  return (x < 0 ? -x : x) <= 1.7976931348623157e308;
}

/** quantize(): NaN has no nearest integer, so it becomes 0 and counts as saturated. */
inline double quantize_input(double x, double two_f, const Quantizer& qz,
                             std::size_t* saturated) noexcept {
  if (x != x) {
    ++*saturated;
    return 0.0;
  }
  return quantize_scaled(x * two_f, qz, saturated);
}

/** Starts an OperandStats pass: zero maxima and column sums. */
inline void stats_begin(OperandStats* st, std::size_t cols) noexcept {
  if (st == nullptr) return;
  st->row_l1_max = 0;
  st->max_abs = 0;
  st->non_finite = 0;
  if (st->col_l1 != nullptr)
    for (std::size_t j = 0; j < cols; ++j) st->col_l1[j] = 0;
}

/** One written value into a row's L1 sum, the running max and its column's sum. */
inline void stats_note(double q, double* row, double* max, double* col) noexcept {
  const double a = q < 0 ? -q : q;
  *row += a;
  *max = vmax(a, *max);
  if (col != nullptr) *col += a;
}

/** Field element of x * s mod q for a checked x, accumulated lazily by callers. */
struct DotAccumulator {
  u128 acc = 0;
  unsigned pending = 0;

  // |x| < 2^53 and s' <= q < 2^61: each term < 2^114, so 2^13 terms fit in 2^127.
  void add(double x, std::uint64_t s) noexcept {
    // Bit masks instead of branches: the sign of device data is random.
    const std::int64_t v = to_int(x);
    const std::uint64_t neg = static_cast<std::uint64_t>(v >> 63);  // all ones if v < 0
    const std::uint64_t mag = (static_cast<std::uint64_t>(v) ^ neg) - neg;
    const std::uint64_t b = s ^ ((s ^ (FieldQ::modulus - s)) & neg);
    acc += static_cast<u128>(mag) * b;
    if (++pending == 8192) {
      acc = FieldQ::reduce128(acc);
      pending = 0;
    }
  }
  std::uint64_t value() const noexcept { return FieldQ::reduce128(acc); }
};

/** Activation value at scale 2^f, shared by every path for non-linear activations. */
inline double activated_scaled(Activation act, double z, double two_f) noexcept {
  return activate(act, z) * two_f;
}

/** ReLU's derivative at z as a byte (ForwardArgs::relu_mask): 1 where z > 0, else 0 (NaN too). */
inline std::uint8_t relu_mask_of(double z) noexcept { return z > 0.0 ? 1 : 0; }

/** ReLU's gradient from a mask byte: any nonzero byte means z > 0. */
inline double gradient_masked(double y, std::uint8_t mask) noexcept { return mask != 0 ? y : 0.0; }

// dZ_prev before quantization: the incoming gradient y (already scaled) times
// the activation's derivative at z. Shared by every path so they stay identical.
inline double gradient_scaled(Activation act, double y, double z) noexcept {
  switch (act) {
    case Activation::identity: return y;
    // Through the mask byte, so a relu_mask_prev gives the same value by construction.
    case Activation::relu: return gradient_masked(y, relu_mask_of(z));
    default: return y * activation_derivative(act, z);
  }
}

}  // namespace detail
}  // namespace math
}  // namespace veil
