#include "math/fixed_point.h"

#include <cmath>
#include <type_traits>

#include "math/detail/kernels.h"
#include "math/detail/scalar.h"

namespace veil {
namespace math {

namespace {

constexpr double kMaxLimit = 9007199254740991.0;  // 2^53 - 1

bool shape_ok(const void* in, std::size_t rows, std::size_t cols, std::size_t ldi, const void* out,
              std::size_t ldo) noexcept {
  if (rows == 0 || cols == 0) return true;
  if (in == nullptr || out == nullptr) return false;
  return rows == 1 || (ldi >= cols && ldo >= cols);
}

template <class T>
PassResult quantize_impl(const T* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                         FixedFormat fmt, double* out, std::size_t ldo) noexcept {
  PassResult res;
  if (!fixed_format_valid(fmt) || !shape_ok(x, rows, cols, ldx, out, ldo)) {
    res.status = Status::at(Fault::invalid_argument);
    return res;
  }
  const double two_f = std::ldexp(1.0, fmt.frac_bits);
  const double limit = fixed_limit(fmt);
  const detail::Quantizer qz{limit, limit + 1.0};
  for (std::size_t i = 0; i < rows; ++i) {
    const T* xr = x + i * ldx;
    double* orow = out + i * ldo;
    for (std::size_t j = 0; j < cols; ++j) {
      orow[j] = detail::quantize_input(static_cast<double>(xr[j]), two_f, qz, &res.saturated);
    }
  }
  return res;
}

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
  if (!fixed_format_valid(fmt) || !shape_ok(x, rows, cols, ldx, out, ldo) ||
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

template <class T>
Status dequantize_impl(const double* xq, std::size_t rows, std::size_t cols, std::size_t ldx,
                       int frac_bits, T* out, std::size_t ldo) noexcept {
  if (frac_bits < 0 || frac_bits > 62 || !shape_ok(xq, rows, cols, ldx, out, ldo)) {
    return Status::at(Fault::invalid_argument);
  }
  const double inv = std::ldexp(1.0, -frac_bits);
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = xq + i * ldx;
    T* orow = out + i * ldo;
    for (std::size_t j = 0; j < cols; ++j) orow[j] = static_cast<T>(xr[j] * inv);
  }
  return Status::success();
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

double quantize_value(double x, FixedFormat fmt, bool* saturated) noexcept {
  std::size_t sat = 0;
  double r = 0.0;
  if (x != x) {
    sat = 1;
  } else if (fixed_format_valid(fmt)) {
    const double limit = fixed_limit(fmt);
    r = detail::quantize_scaled(x * std::ldexp(1.0, fmt.frac_bits),
                                detail::Quantizer{limit, limit + 1.0}, &sat);
  }
  if (saturated != nullptr) *saturated = sat != 0;
  return r;
}

PassResult quantize(const double* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                    FixedFormat fmt, double* out, std::size_t ldo) noexcept {
  return quantize(x, rows, cols, ldx, fmt, out, ldo, nullptr);
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

PassResult quantize(const float* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                    FixedFormat fmt, double* out, std::size_t ldo) noexcept {
  return quantize_impl(x, rows, cols, ldx, fmt, out, ldo);
}

Status dequantize(const double* xq, std::size_t rows, std::size_t cols, std::size_t ldx,
                  int frac_bits, double* out, std::size_t ldo) noexcept {
  return dequantize_impl(xq, rows, cols, ldx, frac_bits, out, ldo);
}

Status dequantize(const double* xq, std::size_t rows, std::size_t cols, std::size_t ldx,
                  int frac_bits, float* out, std::size_t ldo) noexcept {
  return dequantize_impl(xq, rows, cols, ldx, frac_bits, out, ldo);
}

}  // namespace math
}  // namespace veil
