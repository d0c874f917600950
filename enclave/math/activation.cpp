#include "math/activation.h"

#include <cmath>

namespace veil {
namespace math {

namespace {

// Branch on the sign so exp never overflows and 1 - s never cancels badly.
double sigmoid(double z) noexcept {
  if (z >= 0.0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

}  // namespace

double activate(Activation act, double z) noexcept {
  switch (act) {
    case Activation::identity: return z;
    case Activation::relu: return z > 0.0 ? z : 0.0;
    case Activation::sigmoid: return sigmoid(z);
    case Activation::arctan: return std::atan(z);
    case Activation::softplus:
      // log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow, no cancellation.
      return (z > 0.0 ? z : 0.0) + std::log1p(std::exp(-std::fabs(z)));
  }
  return z;
}

double activation_derivative(Activation act, double z) noexcept {
  switch (act) {
    case Activation::identity: return 1.0;
    case Activation::relu: return z > 0.0 ? 1.0 : 0.0;
    case Activation::sigmoid: {
      const double s = sigmoid(z);
      return s * (1.0 - s);
    }
    case Activation::arctan: return 1.0 / (1.0 + z * z);
    case Activation::softplus: return sigmoid(z);
  }
  return 1.0;
}

}  // namespace math
}  // namespace veil
