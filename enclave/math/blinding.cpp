#include "math/blinding.h"

#include "math/detail/kernels.h"
#include "math/detail/scalar.h"

namespace veil {
namespace math {

namespace {

using detail::matrix_ok;

constexpr std::uint64_t kLimbMask = (std::uint64_t{1} << kBlindLimbBits) - 1;

// Blocks of the correction GEMM: an 8 x 256 panel of R's limbs and a 256 x 16
// panel of W (48 KiB) stay near L1 while a tile runs; the limbs' 256-deep block
// and a 128-column block of their products stay in L2.
constexpr std::size_t kDepthBlock = 256;
constexpr std::size_t kColBlock = 128;

std::size_t padded(std::size_t n, std::size_t step) noexcept { return (n + step - 1) / step * step; }

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

std::size_t correction_panel_doubles(std::size_t inner, std::size_t cols) noexcept {
  return padded(cols, detail::kTileCols) * inner;
}

std::size_t correction_work_doubles(std::size_t rows, std::size_t inner) noexcept {
  return padded(2 * rows, detail::kTileRows) * (inner + kColBlock);
}

Status pack_correction_weights(const double* w, std::size_t inner, std::size_t cols,
                               std::size_t ldw, double* panels) noexcept {
  using detail::kTileCols;
  if (!matrix_ok(w, inner, cols, ldw) || (inner != 0 && cols != 0 && panels == nullptr))
    return Status::at(Fault::invalid_argument);
  for (std::size_t j0 = 0; j0 < cols; j0 += kTileCols) {
    double* strip = panels + j0 * inner;  // kTileCols columns from j0, depth-major
    for (std::size_t j = j0; j < j0 + kTileCols; ++j) {
      double l1 = 0;  // exact: integers below 2^53 / (2^24 - 1)
      for (std::size_t k = 0; k < inner; ++k) {
        const double x = j < cols ? w[k * ldw + j] : 0.0;
        const Fault f = detail::classify(x);
        if (f != Fault::none) return Status::at(f, k, j);
        strip[k * kTileCols + (j - j0)] = x;
        l1 += x < 0 ? -x : x;
        if (!blind_limbs_exact(l1)) return Status::at(Fault::out_of_range, 0, j);
      }
    }
  }
  return Status::success();
}

// Long: packs both limbs of R, then runs the blocked loop nest and the reduction.
Status blind_correction(const std::uint64_t* r, std::size_t rows, std::size_t inner,
                        std::size_t ldr, const double* panels, std::size_t cols,
                        std::uint64_t* u, std::size_t ldu, double* work) noexcept {
  using detail::kTileCols;
  using detail::kTileRows;
  if (!matrix_ok(r, rows, inner, ldr) || !matrix_ok(u, rows, cols, ldu) ||
      (rows != 0 && inner != 0 && cols != 0 && (panels == nullptr || work == nullptr)))
    return Status::at(Fault::invalid_argument);
  if (rows == 0 || cols == 0) return Status::success();
  // Limb row i is R_lo row i, limb row rows + i is R_hi row i; the rest pads
  // the last panel with zeros. Panel q holds limb rows 8q..8q+7, depth-major.
  const std::size_t limb_rows = padded(2 * rows, kTileRows);
  double* a = work;
  double* c = work + limb_rows * inner;
  for (std::size_t t = 0; t < limb_rows; ++t) {
    double* dst = a + (t / kTileRows) * kTileRows * inner + t % kTileRows;
    const std::size_t i = t < rows ? t : t - rows;
    for (std::size_t k = 0; k < inner; ++k) {
      const std::uint64_t rik = t < 2 * rows ? r[i * ldr + k] : 0;
      if (rik >= FieldPb::modulus) return Status::at(Fault::invalid_argument, i, k);
      dst[k * kTileRows] = static_cast<double>(t < rows ? rik & kLimbMask : rik >> kBlindLimbBits);
    }
  }
  const detail::ExactTile tile = detail::active_kernels().exact_tile;
  const double base = kBlindLimbBase;
  for (std::size_t j0 = 0; j0 < cols; j0 += kColBlock) {
    const std::size_t width = cols - j0 < kColBlock ? cols - j0 : kColBlock;
    for (std::size_t x = 0; x < limb_rows * kColBlock; ++x) c[x] = 0;
    for (std::size_t p0 = 0; p0 < inner; p0 += kDepthBlock) {
      const std::size_t depth = inner - p0 < kDepthBlock ? inner - p0 : kDepthBlock;
      for (std::size_t jb = 0; jb < width; jb += kTileCols) {
        const double* b = panels + (j0 + jb) * inner + p0 * kTileCols;
        for (std::size_t q = 0; q < limb_rows; q += kTileRows)
          tile(depth, a + q * inner + p0 * kTileRows, b, c + q * kColBlock + jb, kColBlock);
      }
    }
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < width; ++j)
        u[i * ldu + j0 + j] = FieldPb::add(pb_of(c[i * kColBlock + j]),
                                           FieldPb::mul(pb_of(c[(rows + i) * kColBlock + j]),
                                                        static_cast<std::uint64_t>(base)));
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
