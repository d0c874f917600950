// Losses (softmax cross-entropy, MSE) and the seed's back-propagation
// equations (1)-(3) on a hand-computed two-layer network.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "math/activation.h"
#include "math/loss.h"
#include "math_test_util.h"

namespace veil {
namespace math {
namespace {

using testing_util::activation_name;

TEST(MathLoss, CrossEntropyGradientMatchesFiniteDifferences) {
  const std::size_t rows = 3, k = 5;
  const std::vector<double> z0 = {0.3, -1.2, 2.0, 0.0, 0.7, 1.5, 1.4, -0.3, -2.0, 0.1,
                                  -0.8, 0.25, 0.6, 1.9, -1.1};
  const std::vector<std::int32_t> labels = {2, 0, 4};
  std::vector<double> grad(rows * k);
  const LossResult base = softmax_cross_entropy(z0.data(), rows, k, k, labels.data(), grad.data(), k);
  ASSERT_TRUE(base.status.ok());
  EXPECT_EQ(base.correct, 2u);  // rows 0 and 1 predict their labels
  // grad is the per-sample gradient; loss is the batch mean: d(mean)/dz = grad / rows.
  const double h = 1e-5;
  for (std::size_t e = 0; e < z0.size(); ++e) {
    std::vector<double> zp = z0, zm = z0;
    zp[e] += h;
    zm[e] -= h;
    const double lp = softmax_cross_entropy(zp.data(), rows, k, k, labels.data(), nullptr, 0).loss;
    const double lm = softmax_cross_entropy(zm.data(), rows, k, k, labels.data(), nullptr, 0).loss;
    const double fd = (lp - lm) / (2 * h) * rows;
    EXPECT_LT(std::fabs(fd - grad[e]) / std::fabs(grad[e]), 1e-6) << "element " << e;
  }
  // Each gradient row sums to zero (softmax minus one-hot).
  for (std::size_t i = 0; i < rows; ++i) {
    double sum = 0;
    for (std::size_t j = 0; j < k; ++j) sum += grad[i * k + j];
    EXPECT_NEAR(sum, 0.0, 1e-15);
  }
}

TEST(MathLoss, CrossEntropyIsNumericallyStable) {
  const std::vector<double> z = {1000.0, -1000.0, 0.0, 800.0};
  const std::int32_t label = 3;
  std::vector<double> g(4);
  const LossResult r = softmax_cross_entropy(z.data(), 1, 4, 4, &label, g.data(), 4);
  ASSERT_TRUE(r.status.ok());
  EXPECT_DOUBLE_EQ(r.loss, 200.0);
  EXPECT_DOUBLE_EQ(g[0], 1.0);
  EXPECT_DOUBLE_EQ(g[3], -1.0);
  EXPECT_EQ(r.correct, 0u);
  const std::vector<double> even = {0.0, 0.0};
  const std::int32_t zero = 0;
  EXPECT_DOUBLE_EQ(softmax_cross_entropy(even.data(), 1, 2, 2, &zero, nullptr, 0).loss, std::log(2.0));
}

TEST(MathLoss, MseAndBadInputs) {
  const std::vector<double> a = {0.2, 0.9, 0.1, 0.5, 0.3, 0.4};
  const std::vector<std::int32_t> labels = {1, 2};
  std::vector<double> g(6);
  const LossResult r = mse_onehot(a.data(), 2, 3, 3, labels.data(), g.data(), 3);
  ASSERT_TRUE(r.status.ok());
  // Row 0: 0.04 + 0.01 + 0.01; row 1: 0.25 + 0.09 + 0.36.
  EXPECT_NEAR(r.loss, (0.06 + 0.70) / 2, 1e-15);
  EXPECT_EQ(r.correct, 1u);  // row 0 argmax 1 == label; row 1 argmax 0 != 2
  const double want[] = {0.4, -0.2, 0.2, 1.0, 0.6, -1.2};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(g[i], want[i], 1e-15);
  const std::int32_t bad[] = {1, 3};
  const LossResult b = mse_onehot(a.data(), 2, 3, 3, bad, nullptr, 0);
  EXPECT_EQ(b.status.fault, Fault::invalid_argument);
  EXPECT_EQ(b.status.row, 1u);
  std::vector<double> nan = a;
  nan[4] = std::nan("");
  const LossResult c = softmax_cross_entropy(nan.data(), 2, 3, 3, labels.data(), nullptr, 0);
  EXPECT_EQ(c.status.fault, Fault::not_finite);
  EXPECT_EQ(c.status.row, 1u);
  EXPECT_EQ(c.status.col, 1u);
}

// Dense layer helpers written straight from the seed's equations.
std::vector<double> dense(const std::vector<double>& a, const std::vector<double>& w,
                          const std::vector<double>& b, std::size_t rows, std::size_t n, std::size_t m) {
  std::vector<double> z(rows * m);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < m; ++j) {
      double s = b[j];
      for (std::size_t k = 0; k < n; ++k) s += a[i * n + k] * w[k * m + j];
      z[i * m + j] = s;
    }
  return z;
}

struct Grads {
  std::vector<double> dw1, db1, dw2, db2, da0;
  double loss;
};

// z = a_prev W + b, a = act(z); dz = act'(z) * dC/da; dW = a_prev^T dz;
// db = sum_batch dz; dC/da_prev = dz W^T.
Grads backprop(const std::vector<double>& a0, const std::vector<double>& w1,
               const std::vector<double>& b1, const std::vector<double>& w2,
               const std::vector<double>& b2, const std::vector<std::int32_t>& labels,
               Activation act1, Activation act2, std::size_t rows, std::size_t n0, std::size_t n1,
               std::size_t n2) {
  const std::vector<double> z1 = dense(a0, w1, b1, rows, n0, n1);
  std::vector<double> a1(z1.size());
  for (std::size_t e = 0; e < z1.size(); ++e) a1[e] = activate(act1, z1[e]);
  const std::vector<double> z2 = dense(a1, w2, b2, rows, n1, n2);
  std::vector<double> a2(z2.size());
  for (std::size_t e = 0; e < z2.size(); ++e) a2[e] = activate(act2, z2[e]);
  std::vector<double> dc(a2.size());
  const LossResult lr = mse_onehot(a2.data(), rows, n2, n2, labels.data(), dc.data(), n2);
  EXPECT_TRUE(lr.status.ok());
  Grads g;
  g.loss = lr.loss;
  auto layer = [&](const std::vector<double>& a_prev, const std::vector<double>& z,
                   const std::vector<double>& w, const std::vector<double>& dca, Activation act,
                   std::size_t n, std::size_t m, std::vector<double>& dw, std::vector<double>& db) {
    std::vector<double> dz(rows * m);
    for (std::size_t e = 0; e < dz.size(); ++e) dz[e] = activation_derivative(act, z[e]) * dca[e];
    dw.assign(n * m, 0.0);
    db.assign(m, 0.0);
    std::vector<double> da(rows * n, 0.0);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < m; ++j) {
        db[j] += dz[i * m + j];
        for (std::size_t k = 0; k < n; ++k) {
          dw[k * m + j] += a_prev[i * n + k] * dz[i * m + j];
          da[i * n + k] += dz[i * m + j] * w[k * m + j];
        }
      }
    return da;
  };
  const std::vector<double> da1 = layer(a1, z2, w2, dc, act2, n1, n2, g.dw2, g.db2);
  g.da0 = layer(a0, z1, w1, da1, act1, n0, n1, g.dw1, g.db1);
  return g;
}

TEST(MathLoss, TwoLayerMseMatchesHandComputedSeedEquations) {
  // Two samples, 2 -> 2 (ReLU) -> 1 (identity), MSE against y = 1 (one-hot of
  // label 0 with one output). Worked by hand:
  //   sample 1: a0 = (1, 2): z1 = (2, 0.5), a2 = 1.5, dC/da2 = 1
  //   sample 2: a0 = (0, 1): z1 = (0.5, 0.5), a2 = 0, dC/da2 = -2
  const std::vector<double> a0 = {1, 2, 0, 1};
  const std::vector<double> w1 = {1, -1, 0.5, 1}, b1 = {0, -0.5};
  const std::vector<double> w2 = {1, -2}, b2 = {0.5};
  const std::vector<std::int32_t> labels = {0, 0};
  const Grads g = backprop(a0, w1, b1, w2, b2, labels, Activation::relu, Activation::identity, 2, 2,
                           2, 1);
  EXPECT_EQ(g.loss, (0.25 + 1.0) / 2);
  EXPECT_EQ(g.dw2, (std::vector<double>{1, -0.5}));
  EXPECT_EQ(g.db2, (std::vector<double>{-1}));
  EXPECT_EQ(g.dw1, (std::vector<double>{1, -2, 0, 0}));
  EXPECT_EQ(g.db1, (std::vector<double>{-1, 2}));
  EXPECT_EQ(g.da0, (std::vector<double>{3, -1.5, -6, 3}));
}

TEST(MathLoss, TwoLayerSigmoidGradientMatchesFiniteDifferences) {
  const std::vector<double> a0 = {0.3, -0.7, 1.1, 0.2, 0.5, -0.4};
  std::vector<double> w1 = {0.5, -0.3, 0.8, 0.1, -0.6, 0.4, 0.2, 0.9, -0.5};
  const std::vector<double> b1 = {0.1, -0.2, 0.05};
  const std::vector<double> w2 = {0.7, -0.4, 0.3, 0.6, -0.8, 0.2};
  const std::vector<double> b2 = {0.0, 0.1};
  const std::vector<std::int32_t> labels = {1, 0};
  for (Activation act : {Activation::sigmoid, Activation::arctan, Activation::softplus}) {
    const Grads g = backprop(a0, w1, b1, w2, b2, labels, act, Activation::sigmoid, 2, 3, 3, 2);
    const double h = 1e-6;
    for (std::size_t e = 0; e < w1.size(); ++e) {
      std::vector<double> wp = w1, wm = w1;
      wp[e] += h;
      wm[e] -= h;
      // loss is the batch mean; the gradients are of the batch sum.
      const double lp = backprop(a0, wp, b1, w2, b2, labels, act, Activation::sigmoid, 2, 3, 3, 2).loss;
      const double lm = backprop(a0, wm, b1, w2, b2, labels, act, Activation::sigmoid, 2, 3, 3, 2).loss;
      const double fd = (lp - lm) / (2 * h) * 2;
      EXPECT_LT(std::fabs(fd - g.dw1[e]) / std::fabs(g.dw1[e]), 1e-6)
          << activation_name(act) << " dW1[" << e << "]";
    }
  }
}

}  // namespace
}  // namespace math
}  // namespace veil
