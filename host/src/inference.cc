#include "veil/inference.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "bridge.h"
#include "veil/device.h"
#include "veil/error.h"

namespace veil {
namespace {

constexpr size_t kLoadBlockValues = size_t{1} << 21;  // 16 MiB of float64

}  // namespace

// Runs one ecall, charging its wall time to timing_ and throwing on failure.
template <typename Call>
void Inference::timed(const char* name, Call&& call) {
  int status = VEIL_OK;
  const auto start = std::chrono::steady_clock::now();
  oe_result_t result = call(enclave().handle().enclave, &status);
  timing_.total_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  check(name, result, status);
}

Inference::Inference(Enclave& enclave, Device& device, const InferenceConfig& config,
                     const std::vector<const double*>& weights)
    : Session(enclave), device_(device), config_(config) {
  if (config_.layers.empty()) throw ConfigError("Inference: the model has no layers", 2, 0);
  if (weights.size() != config_.layers.size())
    throw InputError("Inference: " + std::to_string(weights.size()) + " weight matrices for " +
                         std::to_string(config_.layers.size()) + " layers",
                     VEIL_ERR_INVALID_ARGUMENT, 0);
  detail::bind_device(id(), &device_, &timing_);
  try {
    veil_inference_config_t raw{};
    raw.layer_count = static_cast<uint32_t>(config_.layers.size());
    raw.mode = static_cast<int32_t>(config_.mode);
    raw.loss = static_cast<int32_t>(config_.loss);
    raw.frac_act = config_.frac_act;
    raw.frac_weights = config_.frac_weights;
    raw.act_clip = config_.act_clip;
    raw.head_layers = config_.head_layers;
    raw.head_lr = config_.head_lr;
    std::vector<veil_layer_spec_t> layers(config_.layers.size());
    for (size_t i = 0; i < layers.size(); ++i) to_wire(config_.layers[i], &layers[i]);
    timed("ecall_inference_init", [&](oe_enclave_t* e, int* status) {
      return ecall_inference_init(e, status, id(), &raw, layers.data(), layers.size());
    });
    for (uint32_t l = 0; l < layers.size(); ++l) {
      const uint32_t rows = layers[l].inputs + 1, cols = layers[l].outputs;
      // Row blocks of about kLoadBlockValues values: each call's buffers must fit the
      // enclave's memory beside the whole W_q that the last block uploads.
      const uint32_t block = static_cast<uint32_t>(
          std::max<size_t>(1, std::min<size_t>(rows, kLoadBlockValues / cols)));
      for (uint32_t first = 0; first < rows; first += block) {
        const uint32_t n = std::min(block, rows - first);
        timed("ecall_inference_load_layer", [&](oe_enclave_t* e, int* status) {
          return ecall_inference_load_layer(e, status, id(), l,
                                            weights[l] + static_cast<size_t>(first) * cols,
                                            static_cast<size_t>(n) * cols);
        });
      }
    }
  } catch (...) {
    detail::unbind_device(id());
    throw;
  }
}

Inference::~Inference() { detail::unbind_device(id()); }

size_t Inference::sealed_slot_size(uint32_t rows) {
  uint64_t size = 0;
  timed("ecall_inference_slot_size", [&](oe_enclave_t* e, int* status) {
    return ecall_inference_slot_size(e, status, id(), rows, &size);
  });
  return static_cast<size_t>(size);
}

std::vector<uint8_t> Inference::precompute(uint32_t rows) {
  std::vector<uint8_t> sealed(sealed_slot_size(rows));
  timed("ecall_inference_precompute", [&](oe_enclave_t* e, int* status) {
    return ecall_inference_precompute(e, status, id(), rows, sealed.data(), sealed.size());
  });
  return sealed;
}

void Inference::predict(const double* x, size_t batch, double* out, const uint8_t* sealed,
                        size_t sealed_size) {
  const size_t features = config_.layers.front().input_features();
  const size_t classes = config_.layers.back().outputs;
  timed("ecall_inference_predict", [&](oe_enclave_t* e, int* status) {
    return ecall_inference_predict(e, status, id(), x, batch * features, batch, sealed,
                                   sealed_size, out, batch * classes);
  });
}

HeadStep Inference::train_step(const double* x, const int32_t* labels, size_t batch,
                               const uint8_t* sealed, size_t sealed_size) {
  const size_t features = config_.layers.front().input_features();
  veil_step_result_t raw{};
  timed("ecall_inference_train_step", [&](oe_enclave_t* e, int* status) {
    return ecall_inference_train_step(e, status, id(), x, batch * features, labels, batch, sealed,
                                      sealed_size, &raw);
  });
  return HeadStep{raw.loss, raw.correct, raw.saturated, raw.step};
}

std::vector<double> Inference::export_head(uint32_t layer) {
  if (layer >= config_.layers.size())
    throw InputError("export_head: layer " + std::to_string(layer) + " does not exist",
                     VEIL_ERR_INVALID_ARGUMENT, 0);
  const LayerSpec& l = config_.layers[layer];
  std::vector<double> w(static_cast<size_t>(l.inputs + 1) * l.outputs);
  timed("ecall_inference_export_head", [&](oe_enclave_t* e, int* status) {
    return ecall_inference_export_head(e, status, id(), layer, w.data(), w.size());
  });
  return w;
}

InferenceStatus Inference::status() const {
  veil_inference_status_t raw{};
  int status = VEIL_OK;
  oe_result_t result = ecall_inference_status(enclave().handle().enclave, &status, id(), &raw);
  check("ecall_inference_status", result, status);
  InferenceStatus s;
  s.batches = raw.batches;
  s.next_slot = raw.next_slot;
  s.slots_sealed = raw.slots_sealed;
  s.checks_passed = raw.checks_passed;
  s.saturated = raw.saturated;
  s.aborted = raw.aborted != 0;
  return s;
}

}  // namespace veil
