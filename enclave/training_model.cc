// A model's description, checked before anything is built from it, and its
// initial weights.
#include <cmath>
#include <cstring>

#include "conv.h"
#include "math/loss.h"
#include "math/prg.h"
#include "training.h"

namespace veil::enclave {
namespace {

constexpr uint32_t kMaxLayers = VEIL_LIMIT_MAX_LAYERS;
constexpr uint32_t kMaxWidth = VEIL_LIMIT_MAX_WIDTH;
constexpr uint32_t kMaxBatch = VEIL_LIMIT_MAX_BATCH;
// The math core numbers activations as the EDL does, so a wire code converts directly.
static_assert(static_cast<int>(math::Activation::identity) == VEIL_ACTIVATION_IDENTITY &&
              static_cast<int>(math::Activation::relu) == VEIL_ACTIVATION_RELU &&
              static_cast<int>(math::Activation::sigmoid) == VEIL_ACTIVATION_SIGMOID &&
              static_cast<int>(math::Activation::arctan) == VEIL_ACTIVATION_ARCTAN &&
              static_cast<int>(math::Activation::softplus) == VEIL_ACTIVATION_SOFTPLUS);

// Stream of the weight-initialisation PRG, keyed by the public seed; each layer
// gets its own.
constexpr uint32_t kStreamInit = 0;

}  // namespace

int validate_model(Session& session, const veil_train_config_t& config,
                   const veil_layer_spec_t* layers, size_t layer_count) {
  if (layer_count == 0 || layer_count > kMaxLayers || layer_count != config.layer_count)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "layer_count=%zu (config says %u); a model has 1 to %u layers", layer_count,
                        config.layer_count, kMaxLayers);
  for (size_t i = 0; i < layer_count; ++i) {
    const veil_layer_spec_t& l = layers[i];
    if (l.inputs == 0 || l.outputs == 0 || l.inputs > kMaxWidth || l.outputs > kMaxWidth)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "layer %zu is %u -> %u; widths must be in [1, %u]", i, l.inputs,
                          l.outputs, kMaxWidth);
    if (l.activation < VEIL_ACTIVATION_IDENTITY || l.activation > VEIL_ACTIVATION_SOFTPLUS)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT, "layer %zu: unknown activation %d", i,
                          l.activation);
  }
  int rc = conv::validate(session, layers, layer_count);  // kinds, geometry, chaining
  if (rc != VEIL_OK) return rc;
  if (config.loss != VEIL_LOSS_CROSS_ENTROPY && config.loss != VEIL_LOSS_MSE)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "unknown loss %d (0 cross-entropy, 1 mse)",
                        config.loss);
  if (config.loss == VEIL_LOSS_CROSS_ENTROPY &&
      layers[layer_count - 1].activation != VEIL_ACTIVATION_IDENTITY)
    return session.fail(VEIL_ERR_CONFIG,
                        "cross-entropy fuses the softmax: the last layer's activation must be "
                        "identity");
  if (config.loss == VEIL_LOSS_CROSS_ENTROPY && layers[layer_count - 1].outputs < 2)
    return session.fail(VEIL_ERR_CONFIG, "cross-entropy needs at least 2 classes");
  if (config.frac_act < 0 || config.frac_act > 20)
    return session.fail(VEIL_ERR_CONFIG, "frac_act=%d is outside [0, 20]", config.frac_act);
  if (config.frac_grad < 0 || config.frac_grad > 24)
    return session.fail(VEIL_ERR_CONFIG, "frac_grad=%d is outside [0, 24]", config.frac_grad);
  if (config.lr_exp < 0 || config.lr_exp > 30)
    return session.fail(VEIL_ERR_CONFIG, "lr_exp=%d is outside [0, 30] (learning rate 2^-lr_exp)",
                        config.lr_exp);
  if (config.max_batch == 0 || config.max_batch > kMaxBatch)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "max_batch=%u is outside [1, %u]",
                        config.max_batch, kMaxBatch);
  const double clips[3] = {config.act_clip, config.grad_clip, config.weight_max};
  const char* clip_names[3] = {"act_clip", "grad_clip", "weight_max"};
  for (int i = 0; i < 3; ++i)
    if (!std::isfinite(clips[i]) || clips[i] <= 0 || clips[i] > 1e6)
      return session.fail(VEIL_ERR_CONFIG, "%s=%g must be finite and in (0, 1e6]", clip_names[i],
                          clips[i]);

  return VEIL_OK;
}

void model_outputs(int32_t loss, math::Activation last, const double* z, size_t batch, size_t m,
                   double* out) {
  if (loss == VEIL_LOSS_CROSS_ENTROPY)
    math::softmax_rows(z, batch, m, m, out);
  else
    for (size_t i = 0; i < batch * m; ++i) out[i] = math::activate(last, z[i]);
}

bool initial_weights(const veil_train_config_t& config, uint32_t li, uint32_t n, uint32_t m,
                     math::Activation activation, std::vector<double>* out) {
  // The initial weights depend only on the public seed, so runs are reproducible.
  math::PrgKey key{{'v', 'e', 'i', 'l', '-', 'i', 'n', 'i'}};
  std::memcpy(key.bytes + 8, &config.seed, sizeof config.seed);
  math::Prg prg;
  if (!prg.init(key).ok()) return false;
  // He-uniform for rectifier-like activations, Glorot-uniform otherwise; bias 0.
  const bool rectifier =
      activation == math::Activation::relu || activation == math::Activation::softplus;
  const double limit = std::min(rectifier ? std::sqrt(6.0 / n) : std::sqrt(6.0 / (n + m)),
                                config.weight_max);
  out->assign(static_cast<size_t>(n + 1) * m, 0.0);
  std::vector<uint64_t> bits(static_cast<size_t>(n) * m);
  if (!prg.keystream(math::prg_stream(li, kStreamInit), 0, reinterpret_cast<uint8_t*>(bits.data()),
                     bits.size() * sizeof(uint64_t))
           .ok())
    return false;
  for (size_t k = 0; k < bits.size(); ++k) {
    const double u = static_cast<double>(bits[k] >> 11) * 0x1.0p-53;  // uniform in [0, 1)
    (*out)[k] = (2.0 * u - 1.0) * limit;
  }
  return true;
}

}  // namespace veil::enclave
