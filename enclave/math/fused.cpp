#include "math/fused.h"

#include <cmath>
#include <type_traits>

#include "math/detail/blocked.h"
#include "math/detail/kernels.h"

namespace veil {
namespace math {

namespace {

using detail::BackwardPlan;
using detail::ForwardPlan;
using detail::matrix_ok;
using detail::vector_ok;

bool scale_ok(int scale) noexcept { return scale >= 0 && scale <= 1000; }

// A pass's constants: 2^-scale, and 2^f and the clip bounds of its quantized
// output (1 and a dummy when it quantizes nothing).
template <class Plan, class Args>
Plan plan_of(const Args& args, bool quantizes, FixedFormat fmt) noexcept {
  const double limit = quantizes ? fixed_limit(fmt) : 0.0;
  return Plan{args, std::ldexp(1.0, -args.scale), quantizes ? std::ldexp(1.0, fmt.frac_bits) : 1.0,
              detail::Quantizer{limit, limit + 1.0}};
}

// A quantized output: valid when absent, or present with a valid format, a
// usable shape and, for a narrow (float32) output, a limit below 2^23. At most
// one of the float64 and narrow outputs may be set.
bool output_ok(const double* wide, const float* narrow, FixedFormat fmt, std::size_t rows,
               std::size_t cols, std::size_t ld) noexcept {
  if (wide != nullptr && narrow != nullptr) return false;
  if (wide == nullptr && narrow == nullptr) return true;
  if (!fixed_format_valid(fmt)) return false;
  if (narrow != nullptr && !(fixed_limit(fmt) < kNarrowLimit)) return false;
  return matrix_ok(wide != nullptr ? static_cast<const void*>(wide) : narrow, rows, cols, ld);
}

// A pass over the row blocks of parallel.h, combined in block order: the
// kernel runs rows [r0, r1) of the plan, with the block's own statistics.
template <class Plan>
PassResult run_blocked(const Plan& plan, std::size_t cols, OperandStats* stats,
                       std::size_t stat_cols) noexcept {
  const detail::Kernels& k = detail::active_kernels();
  return detail::run_row_blocks(
      plan.args.rows, cols, stats, stat_cols,
      [&](std::size_t r0, std::size_t r1, OperandStats* st) {
        Plan block = plan;
        block.row_begin = r0;
        block.args.rows = r1;
        PassResult r;
        if constexpr (std::is_same_v<Plan, ForwardPlan>) {
          block.args.a_stats = st;
          r = k.forward(block);
        } else {
          block.args.dz_stats = st;
          r = k.backward(block);
        }
        if (r.status.row != Status::npos) r.status.row -= r0;  // merged as block-relative
        return r;
      });
}

PassResult invalid() noexcept {
  PassResult r;
  r.status = Status::at(Fault::invalid_argument);
  return r;
}

}  // namespace

PassResult fused_forward(const ForwardArgs& args) noexcept {
  const ForwardArgs& a = args;
  if (!scale_ok(a.scale) || !matrix_ok(a.z, a.rows, a.cols, a.ld_z) || !vector_ok(a.s, a.cols)) {
    return invalid();
  }
  if (a.z_real != nullptr && !matrix_ok(a.z_real, a.rows, a.cols, a.ld_z_real)) return invalid();
  if (a.relu_mask != nullptr && (a.act != Activation::relu ||
                                 !matrix_ok(a.relu_mask, a.rows, a.cols, a.ld_relu_mask))) {
    return invalid();
  }
  if (!output_ok(a.a_next, a.a_next_narrow, a.a_format, a.rows, a.cols, a.ld_a_next)) {
    return invalid();
  }
  const bool quantizes = a.a_next != nullptr || a.a_next_narrow != nullptr;
  if (static_cast<unsigned>(a.act) > static_cast<unsigned>(Activation::softplus)) return invalid();
  const bool dots = a.next_v[0] != nullptr || a.next_v[1] != nullptr || a.next_dots[0] != nullptr ||
                    a.next_dots[1] != nullptr;
  if (dots && (!quantizes || !vector_ok(a.next_v[0], a.cols) ||
               !vector_ok(a.next_v[1], a.cols) || !vector_ok(a.next_dots[0], a.rows) ||
               !vector_ok(a.next_dots[1], a.rows) || !vector_ok(a.next_scratch, a.cols) ||
               a.next_v[0] == nullptr || a.next_v[1] == nullptr)) {
    return invalid();
  }
  if (a.rows == 0) return PassResult{};
  ForwardPlan plan = plan_of<ForwardPlan>(a, quantizes, a.a_format);
  // Quantized outputs below 2^23 let the vector kernels take the row sums in
  // float64 (docs/arithmetic.md section 2); split the vectors once here.
  // A narrow a_next always qualifies, so its kernels need no other way.
  if (dots && plan.qz.limit < kNarrowLimit) {
    for (int r = 0; r < 2; ++r) {
      double* l = a.next_scratch + 3 * r * a.cols;
      for (std::size_t j = 0; j < a.cols; ++j) {
        const std::uint64_t v = a.next_v[r][j];
        l[j] = static_cast<double>(v & ((1ull << 21) - 1));
        l[a.cols + j] = static_cast<double>((v >> 21) & ((1ull << 21) - 1));
        l[2 * a.cols + j] = static_cast<double>(v >> 42);
      }
    }
    plan.next_limbs = a.next_scratch;
  }
  return run_blocked(plan, a.cols, quantizes ? a.a_stats : nullptr, a.cols);
}

PassResult fused_backward(const BackwardArgs& args) noexcept {
  const BackwardArgs& a = args;
  if (!scale_ok(a.scale) || !matrix_ok(a.da, a.rows, a.cols, a.ld_da) || !vector_ok(a.t, a.cols) ||
      a.out_cols > a.cols) {
    return invalid();
  }
  const bool quantizes = a.dz_prev != nullptr || a.dz_prev_narrow != nullptr;
  if (!output_ok(a.dz_prev, a.dz_prev_narrow, a.g_format, a.rows, a.out_cols, a.ld_dz_prev)) {
    return invalid();
  }
  if (a.relu_mask_prev != nullptr && a.act != Activation::relu) return invalid();
  if (quantizes) {
    // The derivative comes from exactly one of z_prev and the relu mask.
    const bool z_ok = a.relu_mask_prev != nullptr
                          ? a.z_prev == nullptr && matrix_ok(a.relu_mask_prev, a.rows, a.out_cols,
                                                             a.ld_relu_mask_prev)
                          : matrix_ok(a.z_prev, a.rows, a.out_cols, a.ld_z_prev);
    if (!z_ok) return invalid();
  }
  if (static_cast<unsigned>(a.act) > static_cast<unsigned>(Activation::softplus)) return invalid();
  if (a.rows == 0) return PassResult{};
  return run_blocked(plan_of<BackwardPlan>(a, quantizes, a.g_format), a.cols,
                     quantizes ? a.dz_stats : nullptr, a.out_cols);
}

}  // namespace math
}  // namespace veil
