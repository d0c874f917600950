// The trusted side of the bench image's own ecalls (edl/veil_bench.edl): the
// benchmarks' all-in-enclave baseline. Built only into the bench image, beside the
// production sources; the production image (edl/veil.edl) has none of this.
//
// A production Session holds protocol state of the production image only, so the
// baseline's state lives in a table of its own, keyed by session id. The session
// (Guard) still serialises calls and holds the last error message.
#include <map>
#include <memory>
#include <mutex>

#include "baseline.h"
#include "boundary.h"
#include "session.h"
#include "veil_bench_t.h"

using namespace veil::enclave;
using namespace veil::enclave::bench;

namespace veil::enclave::bench {
namespace {

// Each session's baseline. Only calls holding the session's Guard add or remove its
// entry, so a baseline found by such a call stays valid until the call returns.
class Baselines {
 public:
  EnclaveTraining* find(uint64_t session) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = table_.find(session);
    return it == table_.end() ? nullptr : it->second.get();
  }
  void add(uint64_t session, std::unique_ptr<EnclaveTraining> baseline) {
    std::lock_guard<std::mutex> lock(mutex_);
    table_[session] = std::move(baseline);
  }
  void remove(uint64_t session) {
    std::unique_ptr<EnclaveTraining> doomed;  // freed after the lock is released
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = table_.find(session);
    if (it == table_.end()) return;
    doomed = std::move(it->second);
    table_.erase(it);
  }

 private:
  std::mutex mutex_;
  std::map<uint64_t, std::unique_ptr<EnclaveTraining>> table_;
};

Baselines& baselines() {
  static Baselines table;
  return table;
}

// Opens an ecall body that needs the session's baseline: `s` and `baseline`.
#define VEIL_BASELINE_SESSION(call)                                                       \
  Guard guard(session);                                                                   \
  if (guard.status() != VEIL_OK) return guard.status();                                   \
  Session& s = guard.session();                                                           \
  veil::math::UsePool workers(&s.workers());                                              \
  if (s.aborted())                                                                        \
    return s.fail(VEIL_ERR_ABORTED, call ": the session was aborted by an earlier "        \
                                         "integrity failure; no further results leave it"); \
  EnclaveTraining* baseline = baselines().find(session);                                  \
  if (baseline == nullptr)                                                                \
    return s.fail(VEIL_ERR_ORDER, call ": in-enclave training is not configured (call "   \
                                       "ecall_enclave_train_init first)");

}  // namespace
}  // namespace veil::enclave::bench

int ecall_enclave_train_init(uint64_t session, const veil_train_config_t* config,
                             const veil_layer_spec_t* layers, size_t layer_count) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  Session& s = guard.session();
  if (baselines().find(session) != nullptr)
    return s.fail(VEIL_ERR_ORDER, "in-enclave training is already configured in this session");
  if (int rc = check_args(s, "enclave_train_init", {{config, 1, "config"}})) return rc;
  if (int rc = check_args(s, "enclave_train_init", {{layers, layer_count, "layers"}})) return rc;
  std::unique_ptr<EnclaveTraining> created;
  int rc = EnclaveTraining::create(s, *config, layers, layer_count, &created);
  if (rc != VEIL_OK) return rc;
  baselines().add(session, std::move(created));
  return VEIL_OK;
}

int ecall_enclave_train_step(uint64_t session, const double* x, size_t x_count,
                             const int32_t* labels, size_t batch, veil_step_result_t* result) {
  VEIL_BASELINE_SESSION("enclave_train_step")
  if (int rc = check_args(s, "enclave_train_step", {{x, x_count, "x"}})) return rc;
  if (int rc = check_args(s, "enclave_train_step", {{labels, batch, "labels"}})) return rc;
  if (int rc = check_args(s, "enclave_train_step", {{result, 1, "result"}})) return rc;
  return baseline->step(s, x, x_count, labels, batch, result);
}

int ecall_enclave_predict(uint64_t session, const double* x, size_t x_count, size_t batch,
                          double* output, size_t out_count) {
  VEIL_BASELINE_SESSION("enclave_predict")
  if (int rc = check_args(s, "enclave_predict", {{x, x_count, "x"}})) return rc;
  if (int rc = check_args(s, "enclave_predict", {{output, out_count, "output"}})) return rc;
  return baseline->predict(s, x, x_count, batch, output, out_count);
}

int ecall_enclave_train_release(uint64_t session) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  baselines().remove(session);
  return VEIL_OK;
}

int ecall_enclave_gemm(uint64_t session, uint32_t m, uint32_t n, uint32_t k, uint32_t repeats,
                       double* checksum) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  veil::math::UsePool workers(&guard.session().workers());
  if (int rc = check_args(guard.session(), "enclave_gemm", {{checksum, 1, "checksum"}})) return rc;
  return enclave_gemm(guard.session(), m, n, k, repeats, checksum);
}
