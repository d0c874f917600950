// The trusted side of every ecall in edl/veil.edl. Each one validates what the
// bridge copied in (counts, shapes, values), takes the session, and hands the
// work to the protocol that owns it. Nothing here trusts the host.
#include <cstring>

#include "platform.h"
#include "session.h"
#include "training.h"
#include "veil_t.h"

using namespace veil::enclave;

namespace {

constexpr uint32_t kVersionMajor = 0;
constexpr uint32_t kVersionMinor = 1;
constexpr uint32_t kVersionPatch = 0;

uint64_t cpu_features() {
  uint64_t bits = 0;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) bits |= VEIL_FEATURE_AVX2;
  if (__builtin_cpu_supports("avx512f")) bits |= VEIL_FEATURE_AVX512;
#endif
  return bits;
}

}  // namespace

int ecall_open_session(uint64_t* session) {
  if (missing(session))
    return fail_without_session(VEIL_ERR_INVALID_ARGUMENT, "open_session: session is NULL");
  return open_session(session);
}

int ecall_close_session(uint64_t session) { return close_session(session); }

int ecall_get_info(veil_info_t* info) {
  if (missing(info))
    return fail_without_session(VEIL_ERR_INVALID_ARGUMENT, "get_info: info is NULL");
  std::memset(info, 0, sizeof *info);
  info->version_major = kVersionMajor;
  info->version_minor = kVersionMinor;
  info->version_patch = kVersionPatch;
  info->max_sessions = kMaxSessions;
  info->features = VEIL_FEATURE_VERIFY_TRAINING | VEIL_FEATURE_VERIFY_INFERENCE |
                   VEIL_FEATURE_PRIVATE_INFERENCE | cpu_features();
#if defined(VEIL_BACKEND_OPENENCLAVE)
  std::strncpy(info->backend, "openenclave", sizeof info->backend - 1);
#else
  std::strncpy(info->backend, "virtual", sizeof info->backend - 1);
#endif
  return VEIL_OK;
}

int ecall_last_error(uint64_t session, char* message, size_t capacity) {
  if (capacity == 0 || missing(message)) return VEIL_ERR_INVALID_ARGUMENT;
  if (session == 0 || last_failure_was_sessionless()) {
    last_sessionless_error(message, capacity);
    return VEIL_OK;
  }
  Guard guard(session);
  if (guard.status() != VEIL_OK) {
    last_sessionless_error(message, capacity);
    return VEIL_OK;
  }
  guard.session().last_error(message, capacity);
  return VEIL_OK;
}

int ecall_train_init(uint64_t session, const veil_train_config_t* config,
                     const veil_layer_spec_t* layers, size_t layer_count) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  Session& s = guard.session();
  if (s.aborted()) return s.fail(VEIL_ERR_ABORTED, "the session was aborted by an earlier integrity failure");
  if (s.training)
    return s.fail(VEIL_ERR_ORDER, "training is already configured in this session; open a new session");
  if (missing(config)) return null_argument(s, "train_init", "config");
  if (missing(layers, layer_count)) return null_argument(s, "train_init", "layers");
  return s.finish_call(Training::create(s, *config, layers, layer_count, &s.training));
}

// Every call below needs a configured, live training session.
#define VEIL_TRAINING_SESSION(call) \
  VEIL_LIVE_SESSION(call, training, "training", "ecall_train_init")

int ecall_train_step(uint64_t session, const double* x, size_t x_count, const int32_t* labels,
                     size_t batch, veil_step_result_t* result) {
  VEIL_TRAINING_SESSION("train_step")
  if (missing(x, x_count)) return null_argument(s, "train_step", "x");
  if (missing(labels, batch)) return null_argument(s, "train_step", "labels");
  if (missing(result)) return null_argument(s, "train_step", "result");
  return s.finish_call(s.training->step(s, x, x_count, labels, batch, result));
}

int ecall_predict(uint64_t session, const double* x, size_t x_count, size_t batch,
                  double* output, size_t out_count) {
  VEIL_TRAINING_SESSION("predict")
  if (missing(x, x_count)) return null_argument(s, "predict", "x");
  if (missing(output, out_count)) return null_argument(s, "predict", "output");
  return s.finish_call(s.training->predict(s, x, x_count, batch, output, out_count));
}

int ecall_halve_lr(uint64_t session) {
  VEIL_TRAINING_SESSION("halve_lr")
  return s.finish_call(s.training->halve_lr(s));
}

int ecall_export_weights(uint64_t session, uint32_t layer, double* weights, size_t count) {
  VEIL_TRAINING_SESSION("export_weights")
  if (missing(weights, count)) return null_argument(s, "export_weights", "weights");
  return s.finish_call(s.training->export_weights(s, layer, weights, count));
}

int ecall_train_checkpoint_size(uint64_t session, uint64_t* size) {
  VEIL_TRAINING_SESSION("train_checkpoint_size")
  *size = s.training->checkpoint_size();
  return VEIL_OK;
}

int ecall_train_checkpoint(uint64_t session, const uint8_t* key, size_t key_len, uint8_t* blob,
                           size_t capacity, uint64_t* blob_len) {
  VEIL_TRAINING_SESSION("train_checkpoint")
  return s.finish_call(s.training->checkpoint(s, key, key_len, blob, capacity, blob_len));
}

int ecall_train_restore(uint64_t session, const veil_train_config_t* config,
                        const veil_layer_spec_t* layers, size_t layer_count, const uint8_t* key,
                        size_t key_len, const uint8_t* blob, size_t blob_len) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  Session& s = guard.session();
  if (s.aborted()) return s.fail(VEIL_ERR_ABORTED, "restore: the session was aborted");
  if (s.training)
    return s.fail(VEIL_ERR_ORDER, "restore: training is already configured in this session; "
                                  "restore into a fresh session");
  return s.finish_call(Training::restore(s, *config, layers, layer_count, key, key_len, blob,
                                         blob_len, &s.training));
}

int ecall_session_stats(uint64_t session, veil_session_stats_t* stats) {
  Guard guard(session);
  if (guard.status() != VEIL_OK) return guard.status();
  Session& s = guard.session();
  if (missing(stats)) return null_argument(s, "session_stats", "stats");
  std::memset(stats, 0, sizeof *stats);
  stats->checks_passed = s.counters().checks_passed;
  stats->products = s.counters().products;
  stats->saturated = s.counters().saturated;
  stats->aborted = s.aborted() ? 1 : 0;
  if (s.training) {
    stats->step = s.training->steps();
    stats->lr_exp = s.training->lr_exp();
  }
  return VEIL_OK;
}
