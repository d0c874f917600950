#pragma once
// The benchmarks' "everything inside the enclave" baseline (docs/design.md §7 (b)):
// the same MLP trained in float32 entirely in the enclave with its own
// single-threaded GEMM, no device. What Slalom compares against, and what a
// trainable layer that must stay private costs today (docs/design.md §6). Built into
// the bench image only (edl/veil_bench.edl), never into the production image.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "math/activation.h"
#include "veil_bench_t.h"

namespace veil::enclave {
class Session;
}

// Everything the bench image adds lives in this namespace, so a check can tell that
// none of it reached the production image (tests/cpp/bench_image/).
namespace veil::enclave::bench {

/** Float32 SGD entirely inside the enclave. */
class EnclaveTraining {
 public:
  static int create(Session& session, const veil_train_config_t& config,
                    const veil_layer_spec_t* layers, size_t layer_count,
                    std::unique_ptr<EnclaveTraining>* out);
  int step(Session& session, const double* x, size_t x_count, const int32_t* labels,
           size_t batch, veil_step_result_t* result);
  int predict(Session& session, const double* x, size_t x_count, size_t batch, double* output,
              size_t out_count);

 private:
  struct Layer {
    uint32_t n = 0, m = 0;
    math::Activation activation = math::Activation::identity;
    std::vector<float> w;  // (n + 1) x m, bias last
  };
  int check(Session& session, const double* x, size_t x_count, size_t batch, const char* call);
  void forward(const double* x, size_t batch);

  veil_train_config_t config_{};
  std::vector<Layer> layers_;
  float lr_ = 0;  // 2^-(k + beta): the same step as verify training
  uint64_t step_ = 0;
  std::vector<std::vector<float>> acts_, pre_;
  std::vector<float> grad_, grad_prev_, dact_;
  std::vector<double> logits_, loss_grad_;
};

/** C = A * B on enclave-internal matrices (m x k, k x n), repeats times: the GEMM alone. */
int enclave_gemm(Session& session, uint32_t m, uint32_t n, uint32_t k, uint32_t repeats,
                 double* checksum);

}  // namespace veil::enclave::bench
