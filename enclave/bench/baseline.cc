#include "baseline.h"

#include <algorithm>
#include <cmath>

#include "gemm.h"
#include "math/loss.h"
#include "platform.h"
#include "session.h"
#include "training.h"

namespace veil::enclave::bench {

int EnclaveTraining::create(Session& session, const veil_train_config_t& config,
                            const veil_layer_spec_t* layers, size_t layer_count,
                            std::unique_ptr<EnclaveTraining>* out) {
  int rc = validate_model(session, config, layers, layer_count);
  if (rc != VEIL_OK) return rc;
  double bytes = 0;
  for (size_t i = 0; i < layer_count; ++i)
    bytes += 4.0 * (layers[i].inputs + 1) * layers[i].outputs +
             4.0 * config.max_batch * (2.0 * (layers[i].inputs + 1) + 3.0 * layers[i].outputs);
  if (bytes > 2.0 * 1024 * 1024 * 1024)
    return session.fail(VEIL_ERR_RESOURCE,
                        "the in-enclave model needs %.0f MiB; the limit is 2048 MiB", bytes / 1048576.0);
  std::unique_ptr<EnclaveTraining> t(new EnclaveTraining());
  t->config_ = config;
  int beta = 0;
  while ((1u << beta) < config.max_batch) ++beta;
  t->lr_ = std::ldexp(1.0f, -(config.lr_exp + beta));
  std::vector<double> real;
  for (uint32_t li = 0; li < layer_count; ++li) {
    Layer l;
    l.n = layers[li].inputs;
    l.m = layers[li].outputs;
    l.activation = static_cast<math::Activation>(layers[li].activation);
    if (!initial_weights(config, li, l.n, l.m, l.activation, &real))
      return session.fail(VEIL_ERR_INTERNAL, "the enclave's CSPRNG failed");
    l.w.assign(real.begin(), real.end());
    t->layers_.push_back(std::move(l));
  }
  t->acts_.resize(layer_count);
  t->pre_.resize(layer_count);
  *out = std::move(t);
  return VEIL_OK;
}

int EnclaveTraining::check(Session& session, const double* x, size_t x_count, size_t batch,
                           const char* call) {
  const size_t n = layers_.front().n;
  if (batch == 0 || batch > config_.max_batch)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: batch %zu is outside [1, %u]", call, batch,
                        config_.max_batch);
  if (x_count != batch * n)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: x holds %zu values, expected %zu x %zu",
                        call, x_count, batch, n);
  for (size_t i = 0; i < x_count; ++i)
    if (!std::isfinite(x[i]))
      return session.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: x[%zu, %zu] is not finite", call, i / n,
                          i % n);
  return VEIL_OK;
}

// acts_[l] = [a_l, 1] (batch x (n_l + 1)), pre_[l] = a_l W_l (batch x m_l).
void EnclaveTraining::forward(const double* x, size_t batch) {
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    const size_t n = layer.n, m = layer.m;
    std::vector<float>& a = acts_[l];
    a.resize(batch * (n + 1));
    for (size_t i = 0; i < batch; ++i) {
      if (l == 0)
        for (size_t k = 0; k < n; ++k) a[i * (n + 1) + k] = static_cast<float>(x[i * n + k]);
      else
        for (size_t k = 0; k < n; ++k)
          a[i * (n + 1) + k] = static_cast<float>(
              math::activate(layers_[l - 1].activation, pre_[l - 1][i * n + k]));
      a[i * (n + 1) + n] = 1.0f;
    }
    pre_[l].resize(batch * m);
    sgemm(batch, m, n + 1, 1.0f, {a.data(), n + 1, false}, {layer.w.data(), m, false}, 0.0f,
          pre_[l].data(), m);
  }
}

int EnclaveTraining::step(Session& session, const double* x, size_t x_count,
                          const int32_t* labels, size_t batch, veil_step_result_t* result) {
  int rc = check(session, x, x_count, batch, "enclave_train_step");
  if (rc != VEIL_OK) return rc;
  const Layer& top = layers_.back();
  for (size_t i = 0; i < batch; ++i)
    if (labels[i] < 0 || static_cast<uint32_t>(labels[i]) >= top.m)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT, "enclave_train_step: labels[%zu]=%d is outside [0, %u)",
                          i, labels[i], top.m);
  forward(x, batch);
  const size_t m = top.m;
  const std::vector<float>& z = pre_.back();
  logits_.resize(batch * m);
  loss_grad_.resize(batch * m);
  math::LossResult loss;
  if (config_.loss == 0) {
    for (size_t i = 0; i < batch * m; ++i) logits_[i] = z[i];
    loss = math::softmax_cross_entropy(logits_.data(), batch, m, m, labels, loss_grad_.data(), m);
  } else {
    for (size_t i = 0; i < batch * m; ++i) logits_[i] = math::activate(top.activation, z[i]);
    loss = math::mse_onehot(logits_.data(), batch, m, m, labels, loss_grad_.data(), m);
    for (size_t i = 0; i < batch * m; ++i)
      loss_grad_[i] *= math::activation_derivative(top.activation, z[i]);
  }
  grad_.assign(loss_grad_.begin(), loss_grad_.end());
  for (size_t l = layers_.size(); l-- > 0;) {
    Layer& layer = layers_[l];
    const size_t n = layer.n, rows = n + 1;
    if (l > 0) {
      dact_.resize(batch * rows);
      sgemm(batch, rows, layer.m, 1.0f, {grad_.data(), layer.m, false},
            {layer.w.data(), layer.m, true}, 0.0f, dact_.data(), rows);
      grad_prev_.resize(batch * n);
      for (size_t i = 0; i < batch; ++i)
        for (size_t k = 0; k < n; ++k)
          grad_prev_[i * n + k] = dact_[i * rows + k] * static_cast<float>(math::activation_derivative(
                                                            layers_[l - 1].activation, pre_[l - 1][i * n + k]));
    }
    // W <- W - lr * A^T dZ
    sgemm(rows, layer.m, batch, -lr_, {acts_[l].data(), rows, true}, {grad_.data(), layer.m, false},
          1.0f, layer.w.data(), layer.m);
    if (l > 0) grad_.swap(grad_prev_);
  }
  ++step_;
  result->loss = loss.loss;
  result->correct = static_cast<uint32_t>(loss.correct);
  result->saturated = 0;
  result->step = step_;
  result->checks_passed = 0;
  return VEIL_OK;
}

int EnclaveTraining::predict(Session& session, const double* x, size_t x_count, size_t batch,
                             double* output, size_t out_count) {
  int rc = check(session, x, x_count, batch, "enclave_predict");
  if (rc != VEIL_OK) return rc;
  const Layer& top = layers_.back();
  if (out_count != batch * top.m)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "enclave_predict: output holds %zu values, expected %zu",
                        out_count, batch * top.m);
  forward(x, batch);
  const std::vector<float>& z = pre_.back();
  logits_.assign(z.begin(), z.begin() + batch * top.m);
  if (config_.loss == 0)
    math::softmax_rows(logits_.data(), batch, top.m, top.m, output);
  else
    for (size_t i = 0; i < batch * top.m; ++i) output[i] = math::activate(top.activation, z[i]);
  return VEIL_OK;
}

int enclave_gemm(Session& session, uint32_t m, uint32_t n, uint32_t k, uint32_t repeats,
                 double* checksum) {
  if (m == 0 || n == 0 || k == 0 || m > 8192 || n > 8192 || k > 8192 || repeats == 0 ||
      repeats > 1000)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "enclave_gemm: m, n, k must be in [1, 8192] and repeats in [1, 1000]");
  std::vector<float> a(static_cast<size_t>(m) * k), b(static_cast<size_t>(k) * n),
      c(static_cast<size_t>(m) * n);
  // Deterministic contents; the values do not affect the speed.
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 40503u) % 1000) * 1e-3f;
  for (uint32_t r = 0; r < repeats; ++r)
    sgemm(m, n, k, 1.0f, {a.data(), k, false}, {b.data(), n, false}, 0.0f, c.data(), n);
  double sum = 0;
  for (float v : c) sum += v;
  *checksum = sum;
  return VEIL_OK;
}

}  // namespace veil::enclave::bench
