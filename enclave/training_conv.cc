// The backward layout pass of a convolution (docs/design.md §4.4): the device's
// products are checked exactly as a dense layer's (training.cc); this runs on the
// checked dA, inside the enclave.
#include <algorithm>
#include <cmath>

#include "conv.h"
#include "math/activation.h"
#include "math/fixed_point.h"
#include "training.h"

namespace veil::enclave {

template <typename T>
uint64_t Training::conv_backward(uint32_t l, size_t rows, const double* real_da) {
  const Layer& layer = layers_[l];
  const Layer& below = layers_[l - 1];
  const size_t batch = rows / layer.shape.positions(), m = below.m;
  const size_t below_rows = rows_of(l - 1, batch);
  if (limb_.size() < below_rows * m) limb_.resize(below_rows * m);
  // Back through the gather (the bias column has no input), then the pooling.
  double* d_out = below.shape.pool != VEIL_POOL_NONE ? conv_tensor_.data() : limb_.data();
  conv::scatter(layer.shape, real_da, layer.n + 1, batch, d_out);
  if (below.shape.pool != VEIL_POOL_NONE)
    conv::unpool(below.shape, static_cast<uint32_t>(m), d_out, pool_arg_[l - 1].data(), batch,
                 limb_.data());
  const double* z = pre_[l - 1].data();
  for (size_t i = 0; i < below_rows * m; ++i)
    limb_[i] *= math::activation_derivative(below.activation, z[i]);
  return math::quantize(limb_.data(), below_rows, m, m, grad_format(),
                        operands_of<T>().grads[l - 1].data(), m)
      .saturated;
}

template uint64_t Training::conv_backward<float>(uint32_t, size_t, const double*);
template uint64_t Training::conv_backward<double>(uint32_t, size_t, const double*);

}  // namespace veil::enclave
