// Portable kernels: plain C++ for any CPU, and the reference the vector paths
// must match bit for bit.

#include "math/detail/kernels.h"

namespace veil {
namespace math {
namespace detail {

namespace {

// One written value into the stats, if kept: its row's L1 sum, the maximum and
// its column's sum.
void note(OperandStats* stats, std::size_t j, double q, double* row) {
  if (stats != nullptr)
    stats_note(q, row, &stats->max_abs, stats->col_l1 != nullptr ? stats->col_l1 + j : nullptr);
}

// The end of a checked row: its L1 norm into the stats, its sum out and
// compared with the expected one (the first mismatch is kept).
void finish_row(OperandStats* stats, double row_l1, const DotAccumulator& acc,
                std::uint64_t* row_sums, const std::uint64_t* expected, std::size_t i,
                Status* mismatch) {
  if (stats != nullptr) stats->row_l1_max = vmax(row_l1, stats->row_l1_max);
  const std::uint64_t sum = acc.value();
  if (row_sums != nullptr) row_sums[i] = sum;
  if (expected != nullptr && sum != expected[i] && mismatch->ok())
    *mismatch = Status::at(Fault::mismatch, i);
}

// The operand kernels take float64 device values or narrow operands (float):
// classify() applies the range of each, and the arithmetic is the same.
template <class T>
Status matvec(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
              const std::uint64_t* v, std::uint64_t* out) {
  for (std::size_t i = 0; i < rows; ++i) {
    const T* xr = x + i * ld;
    DotAccumulator acc;
    for (std::size_t j = 0; j < cols; ++j) {
      const Fault f = classify(xr[j]);
      if (f != Fault::none) return Status::at(f, i, j);
      acc.add(xr[j], v[j]);
    }
    out[i] = acc.value();
  }
  return Status::success();
}

template <class T>
Status matvec2(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
               const std::uint64_t* v1, const std::uint64_t* v2, std::uint64_t* out1,
               std::uint64_t* out2) {
  for (std::size_t i = 0; i < rows; ++i) {
    const T* xr = x + i * ld;
    DotAccumulator acc1, acc2;
    for (std::size_t j = 0; j < cols; ++j) {
      const Fault f = classify(xr[j]);
      if (f != Fault::none) return Status::at(f, i, j);
      acc1.add(xr[j], v1[j]);
      acc2.add(xr[j], v2[j]);
    }
    out1[i] = acc1.value();
    out2[i] = acc2.value();
  }
  return Status::success();
}

template <class T>
Status matvec_t(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                const std::uint64_t* y, std::uint64_t* out) {
  for (std::size_t j = 0; j < cols; ++j) out[j] = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    const T* xr = x + i * ld;
    for (std::size_t j = 0; j < cols; ++j) {
      const Fault f = classify(xr[j]);
      if (f != Fault::none) return Status::at(f, i, j);
      out[j] = FieldQ::add(out[j], FieldQ::mul(FieldQ::from_int(to_int(xr[j])), y[i]));
    }
  }
  return Status::success();
}

// Quantizing kernels write float64 or, when the limit is below 2^23, narrow
// float32 outputs: the values are exact either way, so the statistics are
// taken from the float64 value and cannot depend on the output type.
template <class TOut>
std::size_t quantize(const double* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                     double two_f, Quantizer qz, TOut* out, std::size_t ldo,
                     OperandStats* stats) {
  std::size_t sat = 0;
  stats_begin(stats, cols);
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ldx;
    TOut* orow = out + i * ldo;
    double row = 0;
    for (std::size_t j = 0; j < cols; ++j) {
      const double xv = xr[j];  // one load: x may be host memory (docs/design.md §5)
      const double q = quantize_input(xv, two_f, qz, &sat);
      orow[j] = static_cast<TOut>(q);
      note(stats, j, q, &row);
      if (stats != nullptr) stats->non_finite += !is_finite(xv);
    }
    if (stats != nullptr) stats->row_l1_max = vmax(row, stats->row_l1_max);
  }
  return sat;
}

template <class TOut>
PassResult forward_into(const ForwardPlan& p, TOut* a_next) {
  const ForwardArgs& a = p.args;
  const bool linear = is_piecewise_linear(a.act);
  const bool relu = a.act == Activation::relu;
  Status mismatch;
  std::size_t sat = 0;  // a local, so that stores to the outputs cannot alias it
  OperandStats* stats = a_next != nullptr ? a.a_stats : nullptr;
  stats_begin(stats, a.cols);
  const bool dots = a.next_dots[0] != nullptr;
  for (std::size_t i = p.row_begin; i < a.rows; ++i) {
    double row_l1 = 0;
    DotAccumulator next0, next1;
    const double* zr = a.z + i * a.ld_z;
    double* zo = a.z_real != nullptr ? a.z_real + i * a.ld_z_real : nullptr;
    std::uint8_t* mo = a.relu_mask != nullptr ? a.relu_mask + i * a.ld_relu_mask : nullptr;
    TOut* ao = a_next != nullptr ? a_next + i * a.ld_a_next : nullptr;
    DotAccumulator acc;
    for (std::size_t j = 0; j < a.cols; ++j) {
      const double x = zr[j];
      const Fault f = classify(x);
      if (f != Fault::none) return PassResult{Status::at(f, i, j), sat};
      acc.add(x, a.s[j]);
      const double z = x * p.inv_scale;
      if (zo != nullptr) zo[j] = z;
      if (mo != nullptr) mo[j] = relu_mask_of(z);
      if (ao != nullptr) {
        double y;
        if (linear) {
          y = z * p.two_f;
          if (relu) y = vmax(y, 0.0);
        } else {
          y = activated_scaled(a.act, z, p.two_f);
        }
        const double q = quantize_scaled(y, p.qz, &sat);
        ao[j] = static_cast<TOut>(q);
        note(stats, j, q, &row_l1);
        if (dots) {
          next0.add(q, a.next_v[0][j]);
          next1.add(q, a.next_v[1][j]);
        }
      }
    }
    if (dots) {
      a.next_dots[0][i] = next0.value();
      a.next_dots[1][i] = next1.value();
    }
    finish_row(stats, row_l1, acc, a.row_sums, a.expected, i, &mismatch);
  }
  return PassResult{mismatch, sat};
}

PassResult forward(const ForwardPlan& p) {
  const ForwardArgs& a = p.args;
  return a.a_next_narrow != nullptr ? forward_into(p, a.a_next_narrow) : forward_into(p, a.a_next);
}

template <class TOut>
PassResult backward_into(const BackwardPlan& p, TOut* dz_prev) {
  const BackwardArgs& a = p.args;
  Status mismatch;
  std::size_t sat = 0;  // a local, so that stores to the outputs cannot alias it
  OperandStats* stats = dz_prev != nullptr ? a.dz_stats : nullptr;
  stats_begin(stats, a.out_cols);
  for (std::size_t i = p.row_begin; i < a.rows; ++i) {
    double row_l1 = 0;
    const double* xr = a.da + i * a.ld_da;
    // The derivative's input: the previous layer's z, or its relu mask.
    const double* zp = dz_prev != nullptr && a.z_prev != nullptr ? a.z_prev + i * a.ld_z_prev
                                                                 : nullptr;
    const std::uint8_t* mp = dz_prev != nullptr && a.relu_mask_prev != nullptr
                                 ? a.relu_mask_prev + i * a.ld_relu_mask_prev
                                 : nullptr;
    TOut* go = dz_prev != nullptr ? dz_prev + i * a.ld_dz_prev : nullptr;
    DotAccumulator acc;
    for (std::size_t j = 0; j < a.cols; ++j) {
      const double x = xr[j];
      const Fault f = classify(x);
      if (f != Fault::none) return PassResult{Status::at(f, i, j), sat};
      acc.add(x, a.t[j]);
      if (go != nullptr && j < a.out_cols) {
        const double y = x * p.inv_scale * p.two_f;
        const double g =
            mp != nullptr ? gradient_masked(y, mp[j]) : gradient_scaled(a.act, y, zp[j]);
        const double q = quantize_scaled(g, p.qz, &sat);
        go[j] = static_cast<TOut>(q);
        note(stats, j, q, &row_l1);
      }
    }
    finish_row(stats, row_l1, acc, a.row_sums, a.expected, i, &mismatch);
  }
  return PassResult{mismatch, sat};
}

PassResult backward(const BackwardPlan& p) {
  const BackwardArgs& a = p.args;
  return a.dz_prev_narrow != nullptr ? backward_into(p, a.dz_prev_narrow)
                                     : backward_into(p, a.dz_prev);
}

void exact_tile(std::size_t depth, const double* a, const double* b, double* c,
                std::size_t ldc) {
  double acc[kTileRows][kTileCols] = {};
  for (std::size_t p = 0; p < depth; ++p, a += kTileRows, b += kTileCols)
    for (std::size_t r = 0; r < kTileRows; ++r)
      for (std::size_t j = 0; j < kTileCols; ++j) acc[r][j] += a[r] * b[j];
  for (std::size_t r = 0; r < kTileRows; ++r)
    for (std::size_t j = 0; j < kTileCols; ++j) c[r * ldc + j] += acc[r][j];
}

const Kernels kPortable = {matvec<double>, matvec2<double>, matvec_t<double>, quantize<double>,
                           forward,        backward,
                           // Narrow operands.
                           matvec<float>,  matvec2<float>,  matvec_t<float>,  quantize<float>,
                           exact_tile};

}  // namespace

const Kernels& portable_kernels() noexcept { return kPortable; }

}  // namespace detail
}  // namespace math
}  // namespace veil
