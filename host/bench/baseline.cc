#include "baseline.h"

#include <openenclave/host.h>

#include <chrono>

#include <string>
#include <vector>

#include "any_bridge.h"  // host/src
#include "veil/enclave.h"
#include "veil/error.h"
#include "veil_bench_u.h"

#ifndef VEIL_BENCH_ENCLAVE_IMAGE_NAME
#error "VEIL_BENCH_ENCLAVE_IMAGE_NAME must name the bench enclave image file"
#endif

// Every call below goes through the bench image's own bridge (veil_bench_u.c, linked
// into this library with hidden visibility): its ecall ids and names are those the
// bench enclave was created with, whatever the production bridge beside it says.

namespace veil::bench {
namespace {

// The enclave's message for a failed call on a session (0: the sessionless one).
std::string last_error(oe_enclave_t* enclave, uint64_t session) {
  char message[1024] = {0};
  int status = VEIL_OK;
  oe_result_t result = ecall_last_error(enclave, &status, session, message, sizeof message);
  if (result != OE_OK || status != VEIL_OK) return std::string();
  message[sizeof message - 1] = '\0';
  return message;
}

}  // namespace

std::string BenchEnclave::default_image_path() {
  std::string production = Enclave::default_image_path();
  auto slash = production.rfind('/');
  std::string dir = slash == std::string::npos ? "." : production.substr(0, slash);
  return dir + "/" + VEIL_BENCH_ENCLAVE_IMAGE_NAME;
}

BenchEnclave::BenchEnclave(const std::string& image_path, bool debug)
    : image_path_(image_path.empty() ? default_image_path() : image_path) {
  uint32_t flags = debug ? OE_ENCLAVE_FLAG_DEBUG : 0;
#if defined(VEIL_OE_SIMULATION)
  flags |= OE_ENCLAVE_FLAG_SIMULATE;
#endif
  oe_result_t result = oe_create_veil_bench_enclave(image_path_.c_str(), OE_ENCLAVE_TYPE_AUTO,
                                                    flags, nullptr, 0, &enclave_);
  if (result != OE_OK) {
    throw EnclaveError("loading the bench enclave image '" + image_path_ + "' failed: " +
                           oe_result_str(result) +
                           " (it is built only with -DVEIL_BUILD_BENCHMARKS=ON)",
                       -1, result);
  }
}

BenchEnclave::~BenchEnclave() {
  if (enclave_) oe_terminate_enclave(enclave_);
}

EnclaveOnlyTrainer::EnclaveOnlyTrainer(BenchEnclave& enclave, const TrainConfig& config)
    : enclave_(enclave), config_(config) {
  if (config_.layers.empty())
    throw ConfigError("EnclaveOnlyTrainer: the model has no layers", 2, 0);
  int status = VEIL_OK;
  oe_result_t result = ecall_open_session(enclave_.handle(), &status, &session_);
  if (result != OE_OK || status != VEIL_OK) {
    session_ = 0;
    detail::throw_call_error("ecall_open_session", result, status,
                             last_error(enclave_.handle(), 0));
  }
  veil_train_config_t raw{};
  std::vector<veil_layer_spec_t> layers;
  to_wire(config_, &raw, &layers);
  result = ecall_enclave_train_init(enclave_.handle(), &status, session_, &raw, layers.data(),
                                    layers.size());
  try {
    check("ecall_enclave_train_init", result, status);
  } catch (...) {
    close();
    throw;
  }
}

EnclaveOnlyTrainer::~EnclaveOnlyTrainer() { close(); }

void EnclaveOnlyTrainer::close() noexcept {
  if (session_ == 0) return;
  int status = VEIL_OK;
  // The production session does not hold the baseline: release it first. Nothing
  // useful can be done if either call fails.
  (void)ecall_enclave_train_release(enclave_.handle(), &status, session_);
  if (ecall_close_session(enclave_.handle(), &status, session_) == OE_OK && status == VEIL_OK)
    for (std::thread& t : workers_) t.join();  // closing released them
  else
    for (std::thread& t : workers_) t.detach();
  workers_.clear();
  session_ = 0;
}

void EnclaveOnlyTrainer::use_threads(unsigned threads) {
  _oe_enclave* enclave = enclave_.handle();
  while (1 + workers_.size() < threads) {
    workers_.emplace_back([enclave, id = session_] {
      int status = VEIL_OK;
      (void)ecall_worker(enclave, &status, id);
    });
  }
  for (int i = 0; i < 10000; ++i) {  // until they are parked (or the enclave had no room)
    veil_session_stats_t stats{};
    int status = VEIL_OK;
    if (ecall_session_stats(enclave, &status, session_, &stats) != OE_OK ||
        stats.threads >= 1 + workers_.size())
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void EnclaveOnlyTrainer::check(const char* call, int oe_result, int status) const {
  if (oe_result == OE_OK && status == VEIL_OK) return;
  detail::throw_call_error(call, oe_result, status,
                           oe_result == OE_OK ? last_error(enclave_.handle(), session_) : "");
}

StepResult EnclaveOnlyTrainer::step(const double* x, const int32_t* labels, size_t batch) {
  veil_step_result_t raw{};
  int status = VEIL_OK;
  oe_result_t result =
      ecall_enclave_train_step(enclave_.handle(), &status, session_, x,
                               batch * config_.layers.front().inputs, labels, batch, &raw);
  check("ecall_enclave_train_step", result, status);
  return StepResult{raw.loss, raw.correct, raw.saturated, raw.step, raw.checks_passed};
}

void EnclaveOnlyTrainer::predict(const double* x, size_t batch, double* out) {
  int status = VEIL_OK;
  oe_result_t result = ecall_enclave_predict(enclave_.handle(), &status, session_, x,
                                             batch * config_.layers.front().inputs, batch, out,
                                             batch * config_.layers.back().outputs);
  check("ecall_enclave_predict", result, status);
}

double EnclaveOnlyTrainer::gemm(uint32_t m, uint32_t n, uint32_t k, uint32_t repeats) {
  double checksum = 0;
  int status = VEIL_OK;
  oe_result_t result =
      ecall_enclave_gemm(enclave_.handle(), &status, session_, m, n, k, repeats, &checksum);
  check("ecall_enclave_gemm", result, status);
  return checksum;
}

}  // namespace veil::bench
