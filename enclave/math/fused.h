#pragma once
/**
 * @file fused.h
 * Fused single passes over a device result (docs/design.md §4.2 and 7): each pass
 * range-checks every element, accumulates the per-row Freivalds sums mod q,
 * and does the layer's non-linear work, reading the B x m result once.
 *
 * Scaling: the device returns integers at scale 2^scale; the real value is
 * x * 2^-scale, computed by multiplying with an exact power of two. Quantized
 * outputs use round-half-even and saturate at the format's limit (counted).
 * All kernel paths (kernel_path.h) return bit-identical outputs and counts on
 * success; on failure the outputs are unspecified and must not be used.
 * Outputs must not alias inputs.
 */

#include <cstddef>
#include <cstdint>

#include "math/activation.h"
#include "math/fixed_point.h"
#include "math/status.h"

namespace veil {
namespace math {

/** Inputs and outputs of the fused forward pass over Z = A * M. */
struct ForwardArgs {
  const double* z = nullptr;  ///< device result, rows x cols, integers at 2^scale
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t ld_z = 0;
  int scale = 0;  ///< in [0, 1000]

  const std::uint64_t* s = nullptr;         ///< secret check vector, length cols
  const std::uint64_t* expected = nullptr;  ///< optional: A v mod q per row; compared
  std::uint64_t* row_sums = nullptr;        ///< optional out: Z s mod q per row

  Activation act = Activation::identity;
  double* z_real = nullptr;  ///< optional out: z = Z * 2^-scale (what the backward needs)
  std::size_t ld_z_real = 0;
  /**
   * Optional out, act == relu only (else invalid_argument), with or without
   * z_real: 1 where z > 0 else 0, rows x cols. All that ReLU's backward needs
   * (BackwardArgs::relu_mask_prev), in one byte per element instead of eight.
   */
  std::uint8_t* relu_mask = nullptr;
  std::size_t ld_relu_mask = 0;
  double* a_next = nullptr;  ///< optional out: quantized act(z), cols columns written
  /**
   * Optional out, instead of a_next (setting both is invalid_argument): the
   * same values as a narrow operand (float32, see freivalds.h), half the bytes
   * for the passes and copies that follow. Requires fixed_limit(a_format) <
   * 2^23 (else invalid_argument); ld_a_next, a_format, a_stats and the
   * next-layer dots apply to it as to a_next, with identical results.
   */
  float* a_next_narrow = nullptr;
  std::size_t ld_a_next = 0;  ///< >= cols + 1 leaves room for the caller's bias column
  FixedFormat a_format;  ///< format of a_next (required when a_next or a_next_narrow is set)
  OperandStats* a_stats = nullptr;  ///< optional out (with either a_next): its magnitudes

  /**
   * Optional (with a_next or a_next_narrow): two field vectors over a_next's
   * cols columns (the next layer's v and t). next_dots[r][i] = a_next row i . next_v[r]
   * (mod q), so that the next layer's A v and A t need no pass over A of
   * their own; the caller's bias column is not included. next_scratch holds
   * 6 * cols doubles for the vectors split into float64 limbs.
   */
  const std::uint64_t* next_v[2] = {nullptr, nullptr};
  std::uint64_t* next_dots[2] = {nullptr, nullptr};
  double* next_scratch = nullptr;
};

/**
 * Checks and consumes Z: status is the first range fault, else the first row
 * whose Z s differs from `expected` (mismatch), else success.
 */
PassResult fused_forward(const ForwardArgs& args) noexcept;

/** Inputs and outputs of the fused backward pass over dA = dZ * M^T. */
struct BackwardArgs {
  const double* da = nullptr;  ///< device result, rows x cols (cols = n + 1), at 2^scale
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t ld_da = 0;
  int scale = 0;  ///< in [0, 1000]

  const std::uint64_t* t = nullptr;         ///< secret check vector, length cols
  const std::uint64_t* expected = nullptr;  ///< optional: dZ w mod q per row; compared
  std::uint64_t* row_sums = nullptr;        ///< optional out: dA t mod q per row

  Activation act = Activation::identity;  ///< activation of the previous layer
  const double* z_prev = nullptr;          ///< previous layer's z, rows x out_cols
  std::size_t ld_z_prev = 0;
  /**
   * Instead of z_prev when act == relu: the previous layer's relu_mask, rows x
   * out_cols (any nonzero byte means z > 0); dz_prev is bit-identical to the
   * z_prev version. With either dz_prev, a relu pass takes exactly one of
   * z_prev and relu_mask_prev; other activations take no mask (else invalid_argument).
   */
  const std::uint8_t* relu_mask_prev = nullptr;
  std::size_t ld_relu_mask_prev = 0;
  std::size_t out_cols = 0;  ///< columns emitted (<= cols): n drops the bias column
  double* dz_prev = nullptr;  ///< optional out: quantize(dA * 2^-scale * act'(z_prev))
  /**
   * Optional out, instead of dz_prev (setting both is invalid_argument): the
   * same values as a narrow operand (float32, see freivalds.h). Requires
   * fixed_limit(g_format) < 2^23 (else invalid_argument); ld_dz_prev,
   * g_format and dz_stats apply to it as to dz_prev, with identical results.
   */
  float* dz_prev_narrow = nullptr;
  std::size_t ld_dz_prev = 0;
  FixedFormat g_format;  ///< format of dz_prev (required when either dz_prev is set)
  OperandStats* dz_stats = nullptr;  ///< optional out (with either dz_prev): its magnitudes
};

/** Checks dA (all cols) and emits the previous layer's quantized dz (out_cols). */
PassResult fused_backward(const BackwardArgs& args) noexcept;

}  // namespace math
}  // namespace veil
