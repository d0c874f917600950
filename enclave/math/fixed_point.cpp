#include "math/fixed_point.h"

#include <cmath>
#include <type_traits>

#include "math/detail/blocked.h"
#include "math/detail/kernels.h"
#include "math/detail/scalar.h"

namespace veil {
namespace math {

constexpr double kMaxLimit = 9007199254740991.0;  // 2^53 - 1

bool fixed_format_valid(FixedFormat fmt) noexcept {
  return fmt.frac_bits >= 0 && fmt.frac_bits <= 62 && fmt.clip > 0.0 &&
         fmt.clip <= 1.7976931348623157e308;
}

double fixed_limit(FixedFormat fmt) noexcept {
  if (!fixed_format_valid(fmt)) return -1.0;
  const double l = std::floor(std::ldexp(fmt.clip, fmt.frac_bits));
  return l < kMaxLimit ? l : kMaxLimit;
}

// The narrow output needs a limit below 2^23, where every output is exact.
template <class TOut>
PassResult quantize(const double* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                    FixedFormat fmt, TOut* out, std::size_t ldo, OperandStats* stats) noexcept {
  PassResult res;
  constexpr bool kNarrow = std::is_same<TOut, float>::value;
  if (!fixed_format_valid(fmt) || !detail::matrix_ok(x, rows, cols, ldx) ||
      !detail::matrix_ok(out, rows, cols, ldo) || (kNarrow && !(fixed_limit(fmt) < kNarrowLimit))) {
    res.status = Status::at(Fault::invalid_argument);
    return res;
  }
  if (rows == 0 || cols == 0) {
    detail::stats_begin(stats, cols);
    return res;
  }
  const double limit = fixed_limit(fmt), two_f = std::ldexp(1.0, fmt.frac_bits);
  const detail::Quantizer qz{limit, limit + 1.0};
  const detail::Kernels& k = detail::active_kernels();
  return detail::run_row_blocks(
      rows, cols, stats, cols, [&](std::size_t r0, std::size_t r1, OperandStats* st) {
        const double* xb = x + r0 * ldx;
        TOut* ob = out + r0 * ldo;
        PassResult r;
        if constexpr (kNarrow) r.saturated = k.quantize_f(xb, r1 - r0, cols, ldx, two_f, qz, ob, ldo, st);
        else r.saturated = k.quantize(xb, r1 - r0, cols, ldx, two_f, qz, ob, ldo, st);
        return r;
      });
}

template PassResult quantize(const double*, std::size_t, std::size_t, std::size_t, FixedFormat,
                             double*, std::size_t, OperandStats*) noexcept;
template PassResult quantize(const double*, std::size_t, std::size_t, std::size_t, FixedFormat,
                             float*, std::size_t, OperandStats*) noexcept;

}  // namespace math
}  // namespace veil
