#pragma once
/**
 * @file baseline.h
 * @brief The benchmarks' "everything inside the enclave" baseline, host side: the
 * same MLP trained in float32 entirely in the enclave with its own single-threaded
 * GEMM, no device and no checks (docs/design.md §7 (b)). Not a way to train for real.
 *
 * The baseline lives in the bench enclave image (edl/veil_bench.edl, enclave/bench/),
 * which is built only with VEIL_BUILD_BENCHMARKS and is neither the production image
 * nor part of the C++ package; so this header is not installed either.
 */
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "veil/trainer.h"

struct _oe_enclave;

namespace veil::bench {

/** The bench enclave image, loaded on its own: a second enclave beside any production one. */
class BenchEnclave {
 public:
  /**
   * @param image_path path of the bench image; empty loads default_image_path()
   * @param debug      load as a debug enclave, as veil::Enclave does
   * @throws EnclaveError when the image cannot be loaded
   */
  explicit BenchEnclave(const std::string& image_path = "", bool debug = false);
  ~BenchEnclave();
  BenchEnclave(const BenchEnclave&) = delete;
  BenchEnclave& operator=(const BenchEnclave&) = delete;

  /** The bench image beside the production image (veil::Enclave::default_image_path()). */
  static std::string default_image_path();
  /** The path this enclave was loaded from. */
  const std::string& image_path() const noexcept { return image_path_; }
  /** Internal: the bridge handle. */
  _oe_enclave* handle() const noexcept { return enclave_; }

 private:
  std::string image_path_;
  _oe_enclave* enclave_ = nullptr;
};

/** Float32 SGD entirely inside the bench enclave; same model and schedule as Trainer. */
class EnclaveOnlyTrainer {
 public:
  /** Opens a session of its own in enclave. @throws ConfigError, InputError, EnclaveError */
  EnclaveOnlyTrainer(BenchEnclave& enclave, const TrainConfig& config);
  /** Drops the baseline's state and closes the session. */
  ~EnclaveOnlyTrainer();
  EnclaveOnlyTrainer(const EnclaveOnlyTrainer&) = delete;
  EnclaveOnlyTrainer& operator=(const EnclaveOnlyTrainer&) = delete;

  /** One SGD step; x is batch x inputs, labels batch class ids. */
  StepResult step(const double* x, const int32_t* labels, size_t batch);
  /** Inference; out is batch x classes probabilities. */
  void predict(const double* x, size_t batch, double* out);
  /** Run the enclave's GEMM on m x k by k x n matrices repeats times; returns a checksum. */
  double gemm(uint32_t m, uint32_t n, uint32_t k, uint32_t repeats);
  /** Run the GEMM on `threads` threads, as veil::Session::use_threads does. */
  void use_threads(unsigned threads);

 private:
  void check(const char* call, int oe_result, int status) const;
  void close() noexcept;

  BenchEnclave& enclave_;
  TrainConfig config_;
  uint64_t session_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace veil::bench
