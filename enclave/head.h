#pragma once
// The trainable head of private fine-tuning (docs/design.md §4.5): the dense
// layers after a frozen prefix, trained inside the enclave in float64 with
// plain SGD. Their inputs, weights and gradients never leave the enclave, so
// the device sees nothing of them, and nothing of them needs a check.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "math/activation.h"
#include "math/loss.h"

namespace veil::enclave {

class Head {
 public:
  struct Layer {
    uint32_t n = 0;  // inputs (w has n + 1 rows: the bias is last)
    uint32_t m = 0;  // outputs
    math::Activation activation = math::Activation::identity;
    std::vector<double> w;  // (n + 1) x m, real units
  };

  Head() = default;
  ~Head();
  Head(const Head&) = delete;
  Head& operator=(const Head&) = delete;

  std::vector<Layer>& layers() { return layers_; }
  const std::vector<Layer>& layers() const { return layers_; }

  /**
   * Forward pass on xq (batch x (n0 + 1), fixed point at scale 2^frac_act, the
   * bias column included), kept for step(). Returns the last layer's z.
   */
  const double* forward(const double* xq, size_t batch, int frac_act);

  /**
   * One SGD step on the last forward pass: W <- W - lr * (mean gradient).
   * The loss is checked first: a fault (a label out of range, a non-finite
   * loss) leaves every weight as it was.
   */
  math::LossResult step(int32_t loss, const int32_t* labels, size_t batch, double lr);

 private:
  void backward_layer(size_t j, size_t batch, double lr);

  std::vector<Layer> layers_;
  std::vector<std::vector<double>> a_;  // a_[j]: layer j's input, bias column included
  std::vector<std::vector<double>> z_;  // z_[j]: layer j's pre-activation
  std::vector<double> dz_, da_;
};

}  // namespace veil::enclave
