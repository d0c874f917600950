#include "math/fixed_point.h"

#include <cmath>
#include <type_traits>

#include "math/detail/kernels.h"
#include "math/detail/scalar.h"

namespace veil {
namespace math {

namespace {

constexpr double kMaxLimit = 9007199254740991.0;  // 2^53 - 1

// quantize() of float64 input into float64 or narrow float32 output; the
// narrow output needs a limit below 2^23, where every output is exact.
template <class TOut>
PassResult quantize_checked(std::size_t (*kernel)(const double*, std::size_t, std::size_t,
                                                  std::size_t, double, detail::Quantizer, TOut*,
                                                  std::size_t, OperandStats*),
                            const double* x, std::size_t rows, std::size_t cols,
                            std::size_t ldx, FixedFormat fmt, TOut* out, std::size_t ldo,
                            OperandStats* stats) noexcept {
  PassResult res;
  constexpr bool kNarrow = std::is_same<TOut, float>::value;
  if (!fixed_format_valid(fmt) || !detail::matrix_ok(x, rows, cols, ldx) ||
      !detail::matrix_ok(out, rows, cols, ldo) ||
      (kNarrow && !(fixed_limit(fmt) < kNarrowLimit))) {
    res.status = Status::at(Fault::invalid_argument);
    return res;
  }
  if (rows == 0 || cols == 0) {
    detail::stats_begin(stats, cols);
    return res;
  }
  const double limit = fixed_limit(fmt);
  res.saturated = kernel(x, rows, cols, ldx, std::ldexp(1.0, fmt.frac_bits),
                         detail::Quantizer{limit, limit + 1.0}, out, ldo, stats);
  return res;
}

}  // namespace

bool fixed_format_valid(FixedFormat fmt) noexcept {
  return fmt.frac_bits >= 0 && fmt.frac_bits <= 62 && fmt.clip > 0.0 &&
         fmt.clip <= 1.7976931348623157e308;
}

double fixed_limit(FixedFormat fmt) noexcept {
  if (!fixed_format_valid(fmt)) return -1.0;
  const double l = std::floor(std::ldexp(fmt.clip, fmt.frac_bits));
  return l < kMaxLimit ? l : kMaxLimit;
}

PassResult quantize(const double* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                    FixedFormat fmt, double* out, std::size_t ldo, OperandStats* stats) noexcept {
  return quantize_checked(detail::active_kernels().quantize, x, rows, cols, ldx, fmt, out, ldo,
                          stats);
}

PassResult quantize(const double* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                    FixedFormat fmt, float* out, std::size_t ldo, OperandStats* stats) noexcept {
  return quantize_checked(detail::active_kernels().quantize_f, x, rows, cols, ldx, fmt, out, ldo,
                          stats);
}

}  // namespace math
}  // namespace veil
