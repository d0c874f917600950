#pragma once
/**
 * @file baseline.h
 * @brief The benchmarks' "everything inside the enclave" baseline: the same MLP
 * trained in float32 entirely in the enclave with its own single-threaded GEMM,
 * no device and no checks (DESIGN.md 7 (b)). Not a way to train for real.
 */
#include <cstddef>
#include <cstdint>

#include "veil/session.h"
#include "veil/trainer.h"

namespace veil {

/** Float32 SGD entirely inside the enclave; same model and schedule as Trainer. */
class EnclaveOnlyTrainer : public Session {
 public:
  EnclaveOnlyTrainer(Enclave& enclave, const TrainConfig& config);
  /** One SGD step; x is batch x inputs, labels batch class ids. */
  StepResult step(const double* x, const int32_t* labels, size_t batch);
  /** Inference; out is batch x classes probabilities. */
  void predict(const double* x, size_t batch, double* out);
  /** Run the enclave's GEMM on m x k by k x n matrices repeats times; returns a checksum. */
  double gemm(uint32_t m, uint32_t n, uint32_t k, uint32_t repeats);

 private:
  TrainConfig config_;
};

}  // namespace veil
