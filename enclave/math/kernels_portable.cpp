// Portable kernels: plain C++ for any CPU, and the reference the vector paths
// must match bit for bit.

#include "math/detail/kernels.h"

namespace veil {
namespace math {
namespace detail {

namespace {

Status range(const double* x, std::size_t rows, std::size_t cols, std::size_t ld) {
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      const Fault f = classify(x[i * ld + j]);
      if (f != Fault::none) return Status::at(f, i, j);
    }
  }
  return Status::success();
}

Status matvec(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
              const std::uint64_t* v, std::uint64_t* out) {
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ld;
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

Status matvec2(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
               const std::uint64_t* v1, const std::uint64_t* v2, std::uint64_t* out1,
               std::uint64_t* out2) {
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ld;
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

Status matvec_t(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
                const std::uint64_t* y, std::uint64_t* out) {
  for (std::size_t j = 0; j < cols; ++j) out[j] = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ld;
    for (std::size_t j = 0; j < cols; ++j) {
      const Fault f = classify(xr[j]);
      if (f != Fault::none) return Status::at(f, i, j);
      out[j] = FieldQ::add(out[j], FieldQ::mul(FieldQ::from_int(to_int(xr[j])), y[i]));
    }
  }
  return Status::success();
}

std::size_t quantize(const double* x, std::size_t rows, std::size_t cols, std::size_t ldx,
                     double two_f, Quantizer qz, double* out, std::size_t ldo,
                     OperandStats* stats) {
  std::size_t sat = 0;
  stats_begin(stats, cols);
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ldx;
    double* orow = out + i * ldo;
    double row = 0;
    for (std::size_t j = 0; j < cols; ++j) {
      orow[j] = quantize_input(xr[j], two_f, qz, &sat);
      if (stats != nullptr) {
        stats_note(orow[j], &row, &stats->max_abs,
                   stats->col_l1 != nullptr ? stats->col_l1 + j : nullptr);
        stats->non_finite += !is_finite(xr[j]);
      }
    }
    if (stats != nullptr) stats->row_l1_max = vmax(row, stats->row_l1_max);
  }
  return sat;
}

PassResult forward(const ForwardPlan& p) {
  const ForwardArgs& a = p.args;
  const bool linear = is_piecewise_linear(a.act);
  const bool relu = a.act == Activation::relu;
  PassResult res;
  Status mismatch;
  std::size_t sat = 0;  // a local, not res.saturated: stores to outputs could alias it
  OperandStats* stats = a.a_next != nullptr ? a.a_stats : nullptr;
  stats_begin(stats, a.cols);
  const bool dots = a.next_dots[0] != nullptr;
  for (std::size_t i = 0; i < a.rows; ++i) {
    double row_l1 = 0;
    DotAccumulator next0, next1;
    const double* zr = a.z + i * a.ld_z;
    double* zo = a.z_real != nullptr ? a.z_real + i * a.ld_z_real : nullptr;
    double* ao = a.a_next != nullptr ? a.a_next + i * a.ld_a_next : nullptr;
    DotAccumulator acc;
    for (std::size_t j = 0; j < a.cols; ++j) {
      const double x = zr[j];
      const Fault f = classify(x);
      if (f != Fault::none) {
        res.status = Status::at(f, i, j);
        res.saturated = sat;
        return res;
      }
      acc.add(x, a.s[j]);
      const double z = x * p.inv_scale;
      if (zo != nullptr) zo[j] = z;
      if (ao != nullptr) {
        double y;
        if (linear) {
          y = z * p.two_f;
          if (relu) y = vmax(y, 0.0);
        } else {
          y = activated_scaled(a.act, z, p.two_f);
        }
        ao[j] = quantize_scaled(y, p.qz, &sat);
        if (stats != nullptr)
          stats_note(ao[j], &row_l1, &stats->max_abs,
                     stats->col_l1 != nullptr ? stats->col_l1 + j : nullptr);
        if (dots) {
          next0.add(ao[j], a.next_v[0][j]);
          next1.add(ao[j], a.next_v[1][j]);
        }
      }
    }
    if (stats != nullptr) stats->row_l1_max = vmax(row_l1, stats->row_l1_max);
    if (dots) {
      a.next_dots[0][i] = next0.value();
      a.next_dots[1][i] = next1.value();
    }
    const std::uint64_t sum = acc.value();
    if (a.row_sums != nullptr) a.row_sums[i] = sum;
    if (a.expected != nullptr && sum != a.expected[i] && mismatch.ok()) {
      mismatch = Status::at(Fault::mismatch, i);
    }
  }
  res.status = mismatch;
  res.saturated = sat;
  return res;
}

PassResult backward(const BackwardPlan& p) {
  const BackwardArgs& a = p.args;
  PassResult res;
  Status mismatch;
  std::size_t sat = 0;  // a local, not res.saturated: stores to outputs could alias it
  OperandStats* stats = a.dz_prev != nullptr ? a.dz_stats : nullptr;
  stats_begin(stats, a.out_cols);
  for (std::size_t i = 0; i < a.rows; ++i) {
    double row_l1 = 0;
    const double* xr = a.da + i * a.ld_da;
    const double* zp = a.dz_prev != nullptr ? a.z_prev + i * a.ld_z_prev : nullptr;
    double* go = a.dz_prev != nullptr ? a.dz_prev + i * a.ld_dz_prev : nullptr;
    DotAccumulator acc;
    for (std::size_t j = 0; j < a.cols; ++j) {
      const double x = xr[j];
      const Fault f = classify(x);
      if (f != Fault::none) {
        res.status = Status::at(f, i, j);
        res.saturated = sat;
        return res;
      }
      acc.add(x, a.t[j]);
      if (go != nullptr && j < a.out_cols) {
        const double y = gradient_scaled(a.act, x * p.inv_scale * p.two_f, zp[j]);
        go[j] = quantize_scaled(y, p.qz, &sat);
        if (stats != nullptr)
          stats_note(go[j], &row_l1, &stats->max_abs,
                     stats->col_l1 != nullptr ? stats->col_l1 + j : nullptr);
      }
    }
    if (stats != nullptr) stats->row_l1_max = vmax(row_l1, stats->row_l1_max);
    const std::uint64_t sum = acc.value();
    if (a.row_sums != nullptr) a.row_sums[i] = sum;
    if (a.expected != nullptr && sum != a.expected[i] && mismatch.ok()) {
      mismatch = Status::at(Fault::mismatch, i);
    }
  }
  res.status = mismatch;
  res.saturated = sat;
  return res;
}

const Kernels kPortable = {range, matvec, matvec2, matvec_t, quantize, forward, backward};

}  // namespace

const Kernels& portable_kernels() noexcept { return kPortable; }

}  // namespace detail
}  // namespace math
}  // namespace veil
