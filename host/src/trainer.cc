#include "veil/trainer.h"

#include <chrono>
#include <string>
#include <vector>

#include "bridge.h"
#include "veil/device.h"
#include "veil/error.h"

namespace veil {
namespace {

/** Charges the wall time of one ecall to a Timing. */
class EcallTimer {
 public:
  explicit EcallTimer(Timing& timing) : timing_(timing), start_(Clock::now()) {}
  ~EcallTimer() {
    timing_.total_seconds += std::chrono::duration<double>(Clock::now() - start_).count();
  }

 private:
  using Clock = std::chrono::steady_clock;
  Timing& timing_;
  Clock::time_point start_;
};

}  // namespace

void to_wire(const TrainConfig& config, veil_train_config_t* raw,
             std::vector<veil_layer_spec_t>* layers) {
  raw->layer_count = static_cast<uint32_t>(config.layers.size());
  raw->loss = static_cast<int32_t>(config.loss);
  raw->frac_act = config.frac_act;
  raw->frac_grad = config.frac_grad;
  raw->lr_exp = config.lr_exp;
  raw->max_batch = config.max_batch;
  raw->seed = config.seed;
  raw->act_clip = config.act_clip;
  raw->grad_clip = config.grad_clip;
  raw->weight_max = config.weight_max;
  layers->assign(config.layers.size(), veil_layer_spec_t{});
  for (size_t i = 0; i < config.layers.size(); ++i) to_wire(config.layers[i], &(*layers)[i]);
}

void to_wire(const LayerSpec& l, veil_layer_spec_t* raw) {
  *raw = {l.inputs, l.outputs, static_cast<int32_t>(l.activation), static_cast<int32_t>(l.kind),
          l.channels, l.height, l.width, l.kernel, l.stride, l.padding,
          static_cast<int32_t>(l.pool), l.pool_size};
}

Trainer::Trainer(Enclave& enclave, Device& device, const TrainConfig& config)
    : Session(enclave), device_(device), config_(config) {
  if (config_.layers.empty()) throw ConfigError("Trainer: the model has no layers", 2, 0);
  detail::bind_device(id(), &device_, &timing_);
  veil_train_config_t raw{};
  std::vector<veil_layer_spec_t> layers;
  to_wire(config_, &raw, &layers);
  int status = VEIL_OK;
  oe_result_t result;
  {
    EcallTimer timer(timing_);
    result = ecall_train_init(enclave.handle().enclave, &status, id(), &raw, layers.data(),
                              layers.size());
  }
  if (result != OE_OK || status != VEIL_OK) {
    try {
      raise("ecall_train_init", result, status);
    } catch (...) {
      detail::unbind_device(id());
      throw;
    }
  }
}

Trainer::~Trainer() { detail::unbind_device(id()); }

Trainer::Trainer(Enclave& enclave, Device& device, const TrainConfig& config, Restoring)
    : Session(enclave), device_(device), config_(config) {
  if (config_.layers.empty()) throw ConfigError("Trainer: the model has no layers", 2, 0);
  detail::bind_device(id(), &device_, &timing_);
}

std::unique_ptr<Trainer> Trainer::restore(Enclave& enclave, Device& device,
                                          const TrainConfig& config,
                                          const std::vector<uint8_t>& checkpoint,
                                          const std::vector<std::vector<double>>& device_weights,
                                          const std::vector<uint8_t>& key) {
  std::unique_ptr<Trainer> t(new Trainer(enclave, device, config, Restoring{}));
  if (device_weights.size() != config.layers.size())
    throw InputError("restore: " + std::to_string(device_weights.size()) +
                         " weight matrices for a model of " + std::to_string(config.layers.size()) +
                         " layers",
                     VEIL_ERR_INVALID_ARGUMENT, 0);
  // The stored weights go to the device through the ocall router, exactly as
  // the enclave's own upload would, so the router knows every layer's shape.
  for (uint32_t l = 0; l < config.layers.size(); ++l) {
    const LayerSpec& spec = config.layers[l];
    const size_t rows = spec.inputs + 1, cols = spec.outputs;
    if (device_weights[l].size() != rows * cols)
      throw InputError("restore: layer " + std::to_string(l) + " has " +
                           std::to_string(device_weights[l].size()) + " stored weights, expected " +
                           std::to_string(rows * cols),
                       VEIL_ERR_INVALID_ARGUMENT, 0);
    int rc = ocall_device_upload(t->id(), l, device_weights[l].data(), rows, cols, rows * cols);
    if (rc != VEIL_OK)
      throw DeviceError("restore: the device refused layer " + std::to_string(l) + ": " +
                            detail::take_device_error(t->id()),
                        rc, 0);
  }
  veil_train_config_t raw{};
  std::vector<veil_layer_spec_t> layers;
  to_wire(config, &raw, &layers);
  int status = VEIL_OK;
  oe_result_t result;
  {
    EcallTimer timer(t->timing_);
    result = ecall_train_restore(enclave.handle().enclave, &status, t->id(), &raw, layers.data(),
                                 layers.size(), key.data(), key.size(), checkpoint.data(),
                                 checkpoint.size());
  }
  t->check("ecall_train_restore", result, status);
  t->config_.lr_exp = t->stats().lr_exp;
  return t;
}

Checkpoint Trainer::checkpoint(const std::vector<uint8_t>& key) {
  uint64_t size = 0;
  int status = VEIL_OK;
  oe_result_t result = ecall_train_checkpoint_size(enclave().handle().enclave, &status, id(), &size);
  check("ecall_train_checkpoint_size", result, status);
  Checkpoint out;
  out.sealed.resize(size);
  uint64_t written = 0;
  // The enclave reads every layer's weights to check them before it seals; the
  // copies kept here are exactly what it checked.
  detail::capture_downloads(id(), &out.weights);
  result = ecall_train_checkpoint(enclave().handle().enclave, &status, id(), key.data(), key.size(),
                                  out.sealed.data(), out.sealed.size(), &written);
  detail::capture_downloads(id(), nullptr);
  check("ecall_train_checkpoint", result, status);
  out.sealed.resize(written);
  if (out.weights.size() != config_.layers.size())
    throw EnclaveError("checkpoint: the enclave sealed without reading every layer",
                       VEIL_ERR_INTERNAL, 0);
  return out;
}

StepResult Trainer::step(const double* x, const int32_t* labels, size_t batch) {
  size_t features = config_.layers.front().input_features();
  veil_step_result_t raw{};
  int status = VEIL_OK;
  oe_result_t result;
  {
    EcallTimer timer(timing_);
    result = ecall_train_step(enclave().handle().enclave, &status, id(), x, batch * features,
                              labels, batch, &raw);
  }
  check("ecall_train_step", result, status);
  return StepResult{raw.loss, raw.correct, raw.saturated, raw.step, raw.checks_passed};
}

void Trainer::predict(const double* x, size_t batch, double* out) {
  size_t features = config_.layers.front().input_features();
  size_t classes = config_.layers.back().outputs;
  int status = VEIL_OK;
  oe_result_t result;
  {
    EcallTimer timer(timing_);
    result = ecall_predict(enclave().handle().enclave, &status, id(), x, batch * features, batch,
                           out, batch * classes);
  }
  check("ecall_predict", result, status);
}

void Trainer::join(const std::vector<uint8_t>& run_key, uint32_t worker, uint32_t workers) {
  int status = VEIL_OK;
  oe_result_t result;
  {
    EcallTimer timer(timing_);
    result = ecall_train_join(enclave().handle().enclave, &status, id(), run_key.data(),
                              run_key.size(), worker, workers);
  }
  check("ecall_train_join", result, status);
}

void Trainer::halve_lr() {
  int status = VEIL_OK;
  oe_result_t result;
  {
    EcallTimer timer(timing_);
    result = ecall_halve_lr(enclave().handle().enclave, &status, id());
  }
  check("ecall_halve_lr", result, status);
  config_.lr_exp += 1;
}

std::vector<double> Trainer::export_weights(uint32_t layer) {
  if (layer >= config_.layers.size())
    throw InputError("export_weights: layer " + std::to_string(layer) + " does not exist (the model has " +
                         std::to_string(config_.layers.size()) + " layers)",
                     VEIL_ERR_INVALID_ARGUMENT, 0);
  const LayerSpec& spec = config_.layers[layer];
  std::vector<double> weights(static_cast<size_t>(spec.inputs + 1) * spec.outputs);
  int status = VEIL_OK;
  oe_result_t result;
  {
    EcallTimer timer(timing_);
    result = ecall_export_weights(enclave().handle().enclave, &status, id(), layer,
                                  weights.data(), weights.size());
  }
  check("ecall_export_weights", result, status);
  return weights;
}

Timing Trainer::timing() const { return timing_; }
void Trainer::reset_timing() { timing_ = Timing{}; }

}  // namespace veil
