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

// Validates one row: label range and finite values. Returns the argmax.
Status check_row(const double* x, std::size_t cols, std::int32_t label, std::size_t row,
                 std::size_t* argmax) noexcept {
  if (label < 0 || static_cast<std::size_t>(label) >= cols) {
    return Status::at(Fault::invalid_argument, row);
  }
  std::size_t best = 0;
  for (std::size_t j = 0; j < cols; ++j) {
    if (!std::isfinite(x[j])) return Status::at(Fault::not_finite, row, j);
    if (x[j] > x[best]) best = j;
  }
  *argmax = best;
  return Status::success();
}

}  // namespace

LossResult softmax_cross_entropy(const double* logits, std::size_t rows, std::size_t cols,
                                 std::size_t ld, const std::int32_t* labels, double* grad,
                                 std::size_t ld_grad) noexcept {
  LossResult res;
  if (!args_ok(logits, rows, cols, ld, labels, grad, ld_grad)) {
    res.status = Status::at(Fault::invalid_argument);
    return res;
  }
  double total = 0.0;
  for (std::size_t i = 0; i < rows; ++i) {
    const double* z = logits + i * ld;
    std::size_t best = 0;
    const Status st = check_row(z, cols, labels[i], i, &best);
    if (!st.ok()) {
      res.status = st;
      return res;
    }
    const std::size_t y = static_cast<std::size_t>(labels[i]);
    // Shift by the maximum: every exponent is <= 0, the largest term is 1.
    const double zmax = z[best];
    double* g = grad != nullptr ? grad + i * ld_grad : nullptr;
    double sum = 0.0;
    for (std::size_t j = 0; j < cols; ++j) {
      const double e = std::exp(z[j] - zmax);
      sum += e;
      if (g != nullptr) g[j] = e;  // one exp per logit: the gradient reuses it
    }
    total += std::log(sum) - (z[y] - zmax);
    res.correct += best == y;
    if (g != nullptr) {
      const double inv = 1.0 / sum;
      for (std::size_t j = 0; j < cols; ++j) g[j] *= inv;
      g[y] -= 1.0;
    }
  }
  res.loss = rows == 0 ? 0.0 : total / static_cast<double>(rows);
  return res;
}

LossResult mse_onehot(const double* outputs, std::size_t rows, std::size_t cols, std::size_t ld,
                      const std::int32_t* labels, double* grad, std::size_t ld_grad) noexcept {
  LossResult res;
  if (!args_ok(outputs, rows, cols, ld, labels, grad, ld_grad)) {
    res.status = Status::at(Fault::invalid_argument);
    return res;
  }
  double total = 0.0;
  for (std::size_t i = 0; i < rows; ++i) {
    const double* a = outputs + i * ld;
    std::size_t best = 0;
    const Status st = check_row(a, cols, labels[i], i, &best);
    if (!st.ok()) {
      res.status = st;
      return res;
    }
    const std::size_t y = static_cast<std::size_t>(labels[i]);
    double c = 0.0;
    for (std::size_t j = 0; j < cols; ++j) {
      const double d = a[j] - (j == y ? 1.0 : 0.0);
      c += d * d;
      if (grad != nullptr) grad[i * ld_grad + j] = 2.0 * d;
    }
    total += c;
    res.correct += best == y;
  }
  res.loss = rows == 0 ? 0.0 : total / static_cast<double>(rows);
  return res;
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
