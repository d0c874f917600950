#include "math/blinding.h"

#include "math/detail/scalar.h"

namespace veil {
namespace math {

namespace {

using detail::matrix_ok;

constexpr std::uint64_t kLimbMask = (std::uint64_t{1} << kBlindLimbBits) - 1;

// Residue mod p_b of a checked integer-valued double.
std::uint64_t pb_of(double x) noexcept { return FieldPb::from_int(detail::to_int(x)); }

}  // namespace

Status blind(const double* xq, std::size_t rows, std::size_t cols, std::size_t ldx,
             const std::uint64_t* r, std::size_t ldr, double* lo, double* hi,
             std::size_t ldo) noexcept {
  if (!matrix_ok(xq, rows, cols, ldx) || !matrix_ok(r, rows, cols, ldr) ||
      !matrix_ok(lo, rows, cols, ldo) || !matrix_ok(hi, rows, cols, ldo)) {
    return Status::at(Fault::invalid_argument);
  }
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      const double x = xq[i * ldx + j];
      const Fault f = detail::classify(x);
      if (f != Fault::none) return Status::at(f, i, j);
      const std::uint64_t ri = r[i * ldr + j];
      if (ri >= FieldPb::modulus) return Status::at(Fault::invalid_argument, i, j);
      const std::uint64_t xt = FieldPb::add(pb_of(x), ri);
      lo[i * ldo + j] = static_cast<double>(xt & kLimbMask);
      hi[i * ldo + j] = static_cast<double>(xt >> kBlindLimbBits);
    }
  }
  return Status::success();
}

Status blind_correction(const std::uint64_t* r, std::size_t rows, std::size_t inner,
                        std::size_t ldr, const double* w, std::size_t cols, std::size_t ldw,
                        std::uint64_t* u, std::size_t ldu) noexcept {
  if (!matrix_ok(r, rows, inner, ldr) || !matrix_ok(w, inner, cols, ldw) ||
      !matrix_ok(u, rows, cols, ldu)) {
    return Status::at(Fault::invalid_argument);
  }
  for (std::size_t k = 0; k < inner; ++k) {
    for (std::size_t j = 0; j < cols; ++j) {
      const Fault f = detail::classify(w[k * ldw + j]);
      if (f != Fault::none) return Status::at(f, k, j);
    }
  }
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t k = 0; k < inner; ++k) {
      if (r[i * ldr + k] >= FieldPb::modulus) return Status::at(Fault::invalid_argument, i, k);
    }
  }
  // Column blocks of 128-bit accumulators: each term is < 2^96, so up to
  // 2^31 terms fit before a reduction.
  constexpr std::size_t kBlock = 128;
  u128 acc[kBlock];
  for (std::size_t i = 0; i < rows; ++i) {
    const std::uint64_t* ri = r + i * ldr;
    for (std::size_t c0 = 0; c0 < cols; c0 += kBlock) {
      const std::size_t bw = cols - c0 < kBlock ? cols - c0 : kBlock;
      for (std::size_t j = 0; j < bw; ++j) acc[j] = 0;
      for (std::size_t k = 0; k < inner; ++k) {
        const std::uint64_t rk = ri[k];
        const double* wk = w + k * ldw + c0;
        for (std::size_t j = 0; j < bw; ++j) acc[j] += static_cast<u128>(rk) * pb_of(wk[j]);
        if ((k & ((std::size_t{1} << 30) - 1)) == ((std::size_t{1} << 30) - 1)) {
          for (std::size_t j = 0; j < bw; ++j) acc[j] = FieldPb::reduce128(acc[j]);
        }
      }
      for (std::size_t j = 0; j < bw; ++j) u[i * ldu + c0 + j] = FieldPb::reduce128(acc[j]);
    }
  }
  return Status::success();
}

Status unblind(const double* y_lo, const double* y_hi, std::size_t rows, std::size_t cols,
               std::size_t ldy, const std::uint64_t* u, std::size_t ldu, double* y,
               std::size_t ld_out) noexcept {
  if (!matrix_ok(y_lo, rows, cols, ldy) || !matrix_ok(y_hi, rows, cols, ldy) ||
      !matrix_ok(u, rows, cols, ldu) || !matrix_ok(y, rows, cols, ld_out)) {
    return Status::at(Fault::invalid_argument);
  }
  const std::uint64_t base = std::uint64_t{1} << kBlindLimbBits;
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      const double l = y_lo[i * ldy + j];
      const double h = y_hi[i * ldy + j];
      Fault f = detail::classify(l);
      if (f == Fault::none) f = detail::classify(h);
      if (f != Fault::none) return Status::at(f, i, j);
      const std::uint64_t uij = u[i * ldu + j];
      if (uij >= FieldPb::modulus) return Status::at(Fault::invalid_argument, i, j);
      const std::uint64_t yt = FieldPb::add(pb_of(l), FieldPb::mul(pb_of(h), base));
      y[i * ld_out + j] = static_cast<double>(FieldPb::centre(FieldPb::sub(yt, uij)));
    }
  }
  return Status::success();
}

}  // namespace math
}  // namespace veil
