#pragma once
/**
 * @file activation.h
 * Element-wise activations and their derivatives (docs/design.md §4.3, seed eq. 1-3).
 *
 * Derivatives are functions of the pre-activation z, so the backward pass only
 * needs the z kept by the forward pass. These scalar functions are the single
 * definition used by every kernel path (portable, AVX2, AVX-512): the fused
 * passes call them for the transcendental activations, which is what makes the
 * paths bit-identical.
 */

#include <cstdint>

namespace veil {
namespace math {

/** The supported activations. "softplus" is the seed's "SoftMax" log(1 + e^z). */
enum class Activation : std::uint8_t { identity = 0, relu, sigmoid, arctan, softplus };

/** sigma(z). Numerically stable for all finite z. */
double activate(Activation act, double z) noexcept;

/**
 * sigma'(z): identity 1; relu 1 if z > 0 else 0; sigmoid s(1 - s); arctan
 * 1 / (1 + z^2); softplus sigmoid(z).
 */
double activation_derivative(Activation act, double z) noexcept;

/** True for identity and relu, whose fused kernels are fully vectorized. */
constexpr bool is_piecewise_linear(Activation act) noexcept {
  return act == Activation::identity || act == Activation::relu;
}

}  // namespace math
}  // namespace veil
