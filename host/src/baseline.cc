#include "veil/baseline.h"

#include <vector>

#include "bridge.h"
#include "veil/error.h"

namespace veil {

EnclaveOnlyTrainer::EnclaveOnlyTrainer(Enclave& enclave, const TrainConfig& config)
    : Session(enclave), config_(config) {
  if (config_.layers.empty()) throw ConfigError("EnclaveOnlyTrainer: the model has no layers", 2, 0);
  veil_train_config_t raw{};
  std::vector<veil_layer_spec_t> layers;
  to_wire(config_, &raw, &layers);
  int status = VEIL_OK;
  oe_result_t result = ecall_enclave_train_init(enclave.handle().enclave, &status, id(), &raw,
                                                layers.data(), layers.size());
  check("ecall_enclave_train_init", result, status);
}

StepResult EnclaveOnlyTrainer::step(const double* x, const int32_t* labels, size_t batch) {
  veil_step_result_t raw{};
  int status = VEIL_OK;
  oe_result_t result =
      ecall_enclave_train_step(enclave().handle().enclave, &status, id(), x,
                               batch * config_.layers.front().inputs, labels, batch, &raw);
  check("ecall_enclave_train_step", result, status);
  return StepResult{raw.loss, raw.correct, raw.saturated, raw.step, raw.checks_passed};
}

void EnclaveOnlyTrainer::predict(const double* x, size_t batch, double* out) {
  int status = VEIL_OK;
  oe_result_t result = ecall_enclave_predict(enclave().handle().enclave, &status, id(), x,
                                             batch * config_.layers.front().inputs, batch, out,
                                             batch * config_.layers.back().outputs);
  check("ecall_enclave_predict", result, status);
}

double EnclaveOnlyTrainer::gemm(uint32_t m, uint32_t n, uint32_t k, uint32_t repeats) {
  double checksum = 0;
  int status = VEIL_OK;
  oe_result_t result =
      ecall_enclave_gemm(enclave().handle().enclave, &status, id(), m, n, k, repeats, &checksum);
  check("ecall_enclave_gemm", result, status);
  return checksum;
}

}  // namespace veil
