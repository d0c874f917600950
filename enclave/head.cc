#include "head.h"

#include <cmath>

#include "platform.h"
#include "veil_t.h"

namespace veil::enclave {
Head::~Head() {
  for (Layer& l : layers_) wipe(l.w);
  for (auto& a : a_) wipe(a);
  for (auto& z : z_) wipe(z);
  wipe(dz_);
  wipe(da_);
}

const double* Head::forward(const double* xq, size_t batch, int frac_act) {
  const size_t count = layers_.size();
  a_.resize(count);
  z_.resize(count);
  const double inv = std::ldexp(1.0, -frac_act);
  a_[0].resize(batch * (layers_[0].n + 1));
  for (size_t i = 0; i < a_[0].size(); ++i) a_[0][i] = xq[i] * inv;  // the bias column becomes 1
  for (size_t j = 0; j < count; ++j) {
    const Layer& l = layers_[j];
    const size_t in = l.n + 1;
    std::vector<double>& z = z_[j];
    z.assign(batch * l.m, 0.0);
    for (size_t i = 0; i < batch; ++i)
      for (size_t k = 0; k < in; ++k) {
        const double a = a_[j][i * in + k];
        const double* w = l.w.data() + k * l.m;
        for (size_t c = 0; c < l.m; ++c) z[i * l.m + c] += a * w[c];
      }
    if (j + 1 == count) break;
    std::vector<double>& next = a_[j + 1];
    next.resize(batch * (l.m + 1));
    for (size_t i = 0; i < batch; ++i) {
      for (size_t c = 0; c < l.m; ++c)
        next[i * (l.m + 1) + c] = math::activate(l.activation, z[i * l.m + c]);
      next[i * (l.m + 1) + l.m] = 1.0;
    }
  }
  return z_.back().data();
}

math::LossResult Head::step(int32_t loss, const int32_t* labels, size_t batch, double lr) {
  const Layer& top = layers_.back();
  dz_.resize(batch * top.m);
  math::LossResult r;
  if (loss == VEIL_LOSS_CROSS_ENTROPY) {
    r = math::softmax_cross_entropy(z_.back().data(), batch, top.m, top.m, labels, dz_.data(),
                                    top.m);
  } else {  // MSE on the last activation: dC/dz = dC/da * sigma'(z)
    da_.resize(batch * top.m);
    for (size_t e = 0; e < da_.size(); ++e) da_[e] = math::activate(top.activation, z_.back()[e]);
    r = math::mse_onehot(da_.data(), batch, top.m, top.m, labels, dz_.data(), top.m);
    for (size_t e = 0; e < dz_.size(); ++e)
      dz_[e] *= math::activation_derivative(top.activation, z_.back()[e]);
  }
  if (r.status.ok() && !std::isfinite(r.loss)) r.status = math::Status::at(math::Fault::not_finite);
  if (!r.status.ok()) return r;
  for (size_t j = layers_.size(); j-- > 0;) backward_layer(j, batch, lr);
  return r;
}

// dz_ holds layer j's dC/dz. Computes the layer below's dC/dz with the old
// weights, then updates them: W <- W - (lr / batch) a^T dz.
void Head::backward_layer(size_t j, size_t batch, double lr) {
  Layer& l = layers_[j];
  const size_t in = l.n + 1;
  if (j > 0) {
    da_.assign(batch * l.n, 0.0);
    for (size_t i = 0; i < batch; ++i)
      for (size_t k = 0; k < l.n; ++k) {
        double s = 0;
        for (size_t c = 0; c < l.m; ++c) s += dz_[i * l.m + c] * l.w[k * l.m + c];
        da_[i * l.n + k] = s * math::activation_derivative(layers_[j - 1].activation,
                                                           z_[j - 1][i * l.n + k]);
      }
  }
  const double step = lr / static_cast<double>(batch);
  for (size_t i = 0; i < batch; ++i)
    for (size_t k = 0; k < in; ++k) {
      const double a = a_[j][i * in + k] * step;
      double* w = l.w.data() + k * l.m;
      for (size_t c = 0; c < l.m; ++c) w[c] -= a * dz_[i * l.m + c];
    }
  if (j > 0) dz_.swap(da_);
}

}  // namespace veil::enclave
