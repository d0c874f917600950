#include "math/loss.h"

#include <cmath>

namespace veil {
namespace math {

namespace {

bool args_ok(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
             const std::int32_t* labels, const double* grad, std::size_t ld_grad) noexcept {
  if (rows == 0) return true;
  if (cols == 0 || x == nullptr || labels == nullptr) return false;
  if (rows > 1 && ld < cols) return false;
  return grad == nullptr || rows == 1 || ld_grad >= cols;
}

// The batch loop both losses share: arguments, each row's label and finite
// values, its argmax, and the mean. row_loss(x_row, label, argmax, grad_row)
// returns the row's loss and writes its gradient if grad_row is not null.
template <class RowLoss>
LossResult batch_loss(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
                      const std::int32_t* labels, double* grad, std::size_t ld_grad,
                      RowLoss row_loss) noexcept {
  LossResult res;
  if (!args_ok(x, rows, cols, ld, labels, grad, ld_grad)) {
    res.status = Status::at(Fault::invalid_argument);
    return res;
  }
  double total = 0.0;
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ld;
    if (labels[i] < 0 || static_cast<std::size_t>(labels[i]) >= cols) {
      res.status = Status::at(Fault::invalid_argument, i);
      return res;
    }
    std::size_t best = 0;
    for (std::size_t j = 0; j < cols; ++j) {
      if (!std::isfinite(xr[j])) {
        res.status = Status::at(Fault::not_finite, i, j);
        return res;
      }
      if (xr[j] > xr[best]) best = j;
    }
    const std::size_t y = static_cast<std::size_t>(labels[i]);
    total += row_loss(xr, y, best, grad != nullptr ? grad + i * ld_grad : nullptr);
    res.correct += best == y;
  }
  res.loss = rows == 0 ? 0.0 : total / static_cast<double>(rows);
  return res;
}

}  // namespace

LossResult softmax_cross_entropy(const double* logits, std::size_t rows, std::size_t cols,
                                 std::size_t ld, const std::int32_t* labels, double* grad,
                                 std::size_t ld_grad) noexcept {
  return batch_loss(logits, rows, cols, ld, labels, grad, ld_grad,
                    [cols](const double* z, std::size_t y, std::size_t best, double* g) {
                      // Shift by the maximum: every exponent is <= 0, the largest term is 1.
                      const double zmax = z[best];
                      double sum = 0.0;
                      for (std::size_t j = 0; j < cols; ++j) {
                        const double e = std::exp(z[j] - zmax);
                        sum += e;
                        if (g != nullptr) g[j] = e;  // one exp per logit: the gradient reuses it
                      }
                      if (g != nullptr) {
                        const double inv = 1.0 / sum;
                        for (std::size_t j = 0; j < cols; ++j) g[j] *= inv;
                        g[y] -= 1.0;
                      }
                      return std::log(sum) - (z[y] - zmax);
                    });
}

LossResult mse_onehot(const double* outputs, std::size_t rows, std::size_t cols, std::size_t ld,
                      const std::int32_t* labels, double* grad, std::size_t ld_grad) noexcept {
  return batch_loss(outputs, rows, cols, ld, labels, grad, ld_grad,
                    [cols](const double* a, std::size_t y, std::size_t, double* g) {
                      double c = 0.0;
                      for (std::size_t j = 0; j < cols; ++j) {
                        const double d = a[j] - (j == y ? 1.0 : 0.0);
                        c += d * d;
                        if (g != nullptr) g[j] = 2.0 * d;
                      }
                      return c;
                    });
}

void softmax_rows(const double* logits, std::size_t rows, std::size_t cols, std::size_t ld,
                  double* out) noexcept {
  for (std::size_t i = 0; i < rows; ++i) {  // shifted by the row max for stability
    const double* row = logits + i * ld;
    double* o = out + i * cols;
    double top = row[0], sum = 0;
    for (std::size_t j = 1; j < cols; ++j) top = row[j] > top ? row[j] : top;
    for (std::size_t j = 0; j < cols; ++j) sum += (o[j] = std::exp(row[j] - top));
    for (std::size_t j = 0; j < cols; ++j) o[j] /= sum;
  }
}

}  // namespace math
}  // namespace veil
