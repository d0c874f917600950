// Activations: values, and derivatives against central finite differences.

#include <gtest/gtest.h>

#include <cmath>

#include "math/activation.h"
#include "math_test_util.h"

namespace veil {
namespace math {
namespace {

using testing_util::activation_name;

const Activation kAll[] = {Activation::identity, Activation::relu, Activation::sigmoid,
                           Activation::arctan, Activation::softplus};

TEST(MathActivation, DerivativesMatchCentralDifferences) {
  // Points away from the ReLU kink at 0; h balances truncation and rounding.
  const double points[] = {-7.3, -2.0, -0.61, -0.05, 0.013, 0.4, 1.0, 2.5, 6.1, 11.0};
  const double h = 1e-5;
  for (Activation act : kAll) {
    for (double z : points) {
      const double fd = (activate(act, z + h) - activate(act, z - h)) / (2 * h);
      const double d = activation_derivative(act, z);
      const double rel = std::fabs(fd - d) / std::fmax(std::fabs(d), 1e-300);
      if (d == 0.0) {
        EXPECT_EQ(fd, 0.0) << activation_name(act) << " z=" << z;
      } else {
        EXPECT_LT(rel, 1e-6) << activation_name(act) << " z=" << z;
      }
    }
  }
}

TEST(MathActivation, KnownValuesAndStability) {
  EXPECT_EQ(activate(Activation::sigmoid, 0.0), 0.5);
  EXPECT_EQ(activation_derivative(Activation::sigmoid, 0.0), 0.25);
  EXPECT_EQ(activation_derivative(Activation::arctan, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(activate(Activation::softplus, 0.0), std::log(2.0));
  EXPECT_EQ(activation_derivative(Activation::softplus, 0.0), 0.5);
  EXPECT_EQ(activate(Activation::relu, -3.0), 0.0);
  EXPECT_EQ(activate(Activation::relu, 3.0), 3.0);
  EXPECT_EQ(activation_derivative(Activation::relu, 0.0), 0.0);
  // No overflow or NaN at the extremes.
  EXPECT_EQ(activate(Activation::sigmoid, -800.0), 0.0);
  EXPECT_EQ(activate(Activation::sigmoid, 800.0), 1.0);
  EXPECT_EQ(activate(Activation::softplus, 800.0), 800.0);
  EXPECT_GT(activate(Activation::softplus, -800.0), -1e-300);
  EXPECT_EQ(activation_derivative(Activation::sigmoid, 800.0), 0.0);
  EXPECT_EQ(activation_derivative(Activation::arctan, 1e200), 0.0);
  // The seed's derivative identities.
  for (double z : {-3.0, -0.5, 0.7, 4.0}) {
    const double s = activate(Activation::sigmoid, z);
    EXPECT_DOUBLE_EQ(activation_derivative(Activation::sigmoid, z), s * (1 - s));
    EXPECT_DOUBLE_EQ(activation_derivative(Activation::softplus, z), s);
    EXPECT_DOUBLE_EQ(activation_derivative(Activation::arctan, z), 1 / (1 + z * z));
  }
}

TEST(MathActivation, PiecewiseLinear) {
  EXPECT_TRUE(is_piecewise_linear(Activation::relu));
  EXPECT_FALSE(is_piecewise_linear(Activation::sigmoid));
}

}  // namespace
}  // namespace math
}  // namespace veil
