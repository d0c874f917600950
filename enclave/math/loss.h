#pragma once
/**
 * @file loss.h
 * Losses over a batch of network outputs (rows = samples, cols = classes).
 *
 * Convention for both: `loss` is the batch mean of the per-sample loss, and
 * the gradient is that of the per-sample loss for each row (the gradient of
 * the batch sum), exactly as the seed writes it: dC/da_L = 2 (a_L - y) for
 * MSE. Scaling by the batch size, if wanted, belongs to the learning rate.
 */

#include <cstddef>
#include <cstdint>

#include "math/status.h"

namespace veil {
namespace math {

/** Result of a loss evaluation. */
struct LossResult {
  Status status;            ///< invalid_argument (bad shape or label, at its row) or not_finite
  double loss = 0.0;        ///< batch mean of the per-sample loss
  std::size_t correct = 0;  ///< rows whose argmax (first maximum) equals the label
};

/**
 * Fused, numerically stable softmax cross-entropy: per row,
 * loss = logsumexp(z) - z[label], grad = softmax(z) - onehot(label).
 * grad may be null (evaluation only). Labels must be in [0, cols).
 */
LossResult softmax_cross_entropy(const double* logits, std::size_t rows, std::size_t cols,
                                 std::size_t ld, const std::int32_t* labels, double* grad,
                                 std::size_t ld_grad) noexcept;

/**
 * The seed's MSE with one-hot targets y = onehot(label): per row
 * C = sum_j (a_j - y_j)^2, grad = 2 (a - y). grad may be null.
 */
LossResult mse_onehot(const double* outputs, std::size_t rows, std::size_t cols, std::size_t ld,
                      const std::int32_t* labels, double* grad, std::size_t ld_grad) noexcept;

/** Row-wise softmax of logits (rows x cols, row stride ld) into out (rows x cols, dense). */
void softmax_rows(const double* logits, std::size_t rows, std::size_t cols, std::size_t ld,
                  double* out) noexcept;

}  // namespace math
}  // namespace veil
