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

Trainer::Trainer(Enclave& enclave, Device& device, const TrainConfig& config)
    : Session(enclave), device_(device), config_(config) {
  if (config_.layers.empty()) throw ConfigError("Trainer: the model has no layers", 2, 0);
  detail::bind_device(id(), &device_, &timing_);
  veil_train_config_t raw{};
  raw.layer_count = static_cast<uint32_t>(config_.layers.size());
  raw.loss = static_cast<int32_t>(config_.loss);
  raw.frac_act = config_.frac_act;
  raw.frac_grad = config_.frac_grad;
  raw.lr_exp = config_.lr_exp;
  raw.max_batch = config_.max_batch;
  raw.seed = config_.seed;
  raw.act_clip = config_.act_clip;
  raw.grad_clip = config_.grad_clip;
  raw.weight_max = config_.weight_max;
  std::vector<veil_layer_spec_t> layers;
  for (const LayerSpec& l : config_.layers)
    layers.push_back({l.inputs, l.outputs, static_cast<int32_t>(l.activation)});
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

StepResult Trainer::step(const double* x, const int32_t* labels, size_t batch) {
  size_t features = config_.layers.front().inputs;
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
  size_t features = config_.layers.front().inputs;
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
