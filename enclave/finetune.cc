// Private fine-tuning (docs/design.md §4.5): the two calls an inference session
// with a head adds. The frozen layers run through run_frozen, as predict runs
// them; the head trains in enclave/head.cc.
#include <algorithm>
#include <cstdint>

#include "inference.h"
#include "math/loss.h"

namespace veil::enclave {

int Inference::train_step(Session& session, const double* x, size_t x_count,
                          const int32_t* labels, size_t batch, const uint8_t* sealed,
                          size_t sealed_size, veil_step_result_t* result) {
  if (head_.layers().empty())
    return session.fail(VEIL_ERR_ORDER,
                        "train_step: this session has no trainable head (head_layers=0)");
  int rc = require_ready(session, "train_step");
  if (rc == VEIL_OK) rc = check_input(session, x, x_count, batch, batch * classes());
  if (rc != VEIL_OK) return rc;
  for (size_t i = 0; i < batch; ++i)  // before the slot is spent
    if (labels[i] < 0 || static_cast<size_t>(labels[i]) >= classes())
      return session.fail(VEIL_ERR_INVALID_ARGUMENT, "train_step: labels[%zu] = %d is outside [0, %zu)",
                          i, labels[i], classes());
  uint64_t saturated = 0;
  in_train_step_ = true;
  rc = run_frozen(session, x, x_count, batch, sealed, sealed_size, &saturated);
  in_train_step_ = false;
  if (rc != VEIL_OK) return rc;
  head_.forward(acts_[layer_count() - head_.layers().size()].data(), batch, config_.frac_act);
  const math::LossResult r = head_.step(config_.loss, labels, batch, config_.head_lr);
  if (!r.status.ok())
    return session.fail(VEIL_ERR_CONFIG,
                        "train_step %llu: the head's loss is not finite, so its weights were left "
                        "as they were; lower head_lr (now %g)",
                        static_cast<unsigned long long>(head_steps_ + 1), config_.head_lr);
  ++head_steps_;
  result->loss = r.loss;
  result->correct = static_cast<uint32_t>(r.correct);
  result->saturated = static_cast<uint32_t>(std::min<uint64_t>(saturated, UINT32_MAX));
  result->step = head_steps_;
  result->checks_passed = session.counters().checks_passed;
  return VEIL_OK;
}

int Inference::export_head(Session& session, uint32_t layer, double* out, size_t count) {
  int rc = require_ready(session, "export_head");
  if (rc != VEIL_OK) return rc;
  const size_t frozen = layer_count() - head_.layers().size();
  if (layer < frozen || layer >= layer_count())
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "export_head: layer %u is not a head layer (layers %zu to %zu train in "
                        "the enclave)",
                        layer, frozen, layer_count() - 1);
  const Head::Layer& h = head_.layers()[layer - frozen];
  if (count != h.w.size())
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "export_head: the buffer holds %zu values; layer %u has (%u + 1) x %u",
                        count, layer, h.n, h.m);
  std::copy(h.w.begin(), h.w.end(), out);
  return VEIL_OK;
}

}  // namespace veil::enclave
