// The enclave's boundary: every ecall of edl/veil.edl, each one declared entry
// (boundary.h) saying which session and protocol it needs and the contract of
// each pointer. The entry refuses a NULL pointer with a count, a closed or
// busy session, an aborted session and a protocol out of order before the
// body runs; the protocol then cross-checks counts against the shapes it
// expects. Nothing here trusts the host.
#include <atomic>
#include <cmath>
#include <cstring>

#include "boundary.h"
#include "inference.h"
#include "math/kernel_path.h"
#include "platform.h"
#include "session.h"
#include "training.h"
#include "veil_t.h"

using namespace veil::enclave;

namespace {

constexpr uint32_t kVersionMajor = 0;
constexpr uint32_t kVersionMinor = 1;
constexpr uint32_t kVersionPatch = 0;

// The vector kernel paths this enclave can run here (math/kernel_path.h).
uint64_t cpu_features() {
  uint64_t bits = 0;
  if (veil::math::kernel_path_supported(veil::math::KernelPath::avx2)) bits |= VEIL_FEATURE_AVX2;
  if (veil::math::kernel_path_supported(veil::math::KernelPath::avx512)) bits |= VEIL_FEATURE_AVX512;
  return bits;
}

}  // namespace

int ecall_open_session(uint64_t* session) {
  if (session == nullptr)
    return fail_without_session(VEIL_ERR_INVALID_ARGUMENT, "open_session: session is NULL");
  return open_session(session);
}

int ecall_close_session(uint64_t session) { return close_session(session); }

static_assert(VEIL_LIMIT_MAX_THREADS == veil::math::kMaxBlocks,
              "a session can use as many threads as a pass has blocks");

// A host thread lent to a session's passes (math/parallel.h). It runs blocks
// of the session's calls and touches nothing else of the session, so it holds
// no Guard; it returns once the session is closed.
int ecall_worker(uint64_t session) {
  // Workers of all sessions together leave 8 of veil.conf's 32 TCS to calls.
  static std::atomic<unsigned> lent{0};
  std::shared_ptr<Session> s = find_session(session);
  if (!s)
    return fail_without_session(VEIL_ERR_NO_SESSION, "worker: session %#llx is not open",
                                static_cast<unsigned long long>(session));
  const bool served = lent.fetch_add(1) < 24 && s->workers().serve();  // until the close
  lent.fetch_sub(1);
  if (served) return VEIL_OK;
  return fail_without_session(VEIL_ERR_RESOURCE, "worker: no room for another lent thread (24 in "
                              "the enclave, %d per session)", VEIL_LIMIT_MAX_THREADS - 1);
}

int ecall_get_info(veil_info_t* info) {
  if (info == nullptr)
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
  if (message == nullptr)
    return fail_without_session(VEIL_ERR_INVALID_ARGUMENT, "last_error: message is NULL");
  if (capacity == 0)
    return fail_without_session(VEIL_ERR_INVALID_ARGUMENT, "last_error: capacity is 0");
  // The session's own message, unless the last failure had no session to hold
  // it (or this session is unknown or busy: then that failure is the message).
  if (session != 0 && !last_failure_was_sessionless()) {
    Guard guard(session);
    if (guard.status() == VEIL_OK) {
      guard.session().last_error(message, capacity);
      return VEIL_OK;
    }
  }
  last_sessionless_error(message, capacity);
  return VEIL_OK;
}

int ecall_session_stats(uint64_t session, veil_session_stats_t* stats) {
  return on_session(session, "session_stats", {{stats, 1, "stats"}}, [&](Session& s) {
    std::memset(stats, 0, sizeof *stats);
    stats->checks_passed = s.counters().checks_passed;
    stats->products = s.counters().products;
    stats->saturated = s.counters().saturated;
    stats->limb_splits = s.counters().limb_splits;
    stats->max_abs_refreshes = s.counters().max_abs_refreshes;
    stats->update_operands_sent = s.counters().update_operands_sent;
    stats->audits = s.counters().audits;
    stats->threads = 1 + s.workers().parked();
    stats->aborted = s.aborted() ? 1 : 0;
    if (const Training* t = s.protocol<Training>()) {
      stats->step = t->steps();
      stats->lr_exp = t->lr_exp();
    }
    return int{VEIL_OK};
  });
}

// ---- Verify-mode training (training.h) ----

int ecall_train_init(uint64_t session, const veil_train_config_t* config,
                     const veil_layer_spec_t* layers, size_t layer_count) {
  return configure<Training>(session, "train_init",
                             {{config, 1, "config"}, {layers, layer_count, "layers"}},
                             [&](Session& s, std::unique_ptr<Training>* out) {
    return Training::create(s, *config, layers, layer_count, out);
  });
}

int ecall_train_restore(uint64_t session, const veil_train_config_t* config,
                        const veil_layer_spec_t* layers, size_t layer_count, const uint8_t* key,
                        size_t key_len, const uint8_t* blob, size_t blob_len) {
  return configure<Training>(session, "train_restore",
                             {{config, 1, "config"}, {layers, layer_count, "layers"},
                              {key, key_len, "key"}, {blob, blob_len, "blob"}},
                             [&](Session& s, std::unique_ptr<Training>* out) {
    return Training::restore(s, *config, layers, layer_count, key, key_len, blob, blob_len, out);
  });
}

constexpr const char* kTrainInit = "ecall_train_init or ecall_train_restore";

int ecall_train_step(uint64_t session, const double* x, size_t x_count, const int32_t* labels,
                     size_t batch, veil_step_result_t* result) {
  return on_protocol<Training>(session, "train_step", kTrainInit,
                               {{x, x_count, "x"}, {labels, batch, "labels"}, {result, 1, "result"}},
                               [&](Session& s, Training& t) {
    int rc = check_lent(s, "train_step", x, x_count, "x");
    return rc != VEIL_OK ? rc : t.step(s, x, x_count, labels, batch, result);
  });
}

int ecall_predict(uint64_t session, const double* x, size_t x_count, size_t batch,
                  double* output, size_t out_count) {
  return on_protocol<Training>(session, "predict", kTrainInit,
                               {{x, x_count, "x"}, {output, out_count, "output"}},
                               [&](Session& s, Training& t) {
    int rc = check_lent(s, "predict", x, x_count, "x");
    return rc != VEIL_OK ? rc : t.predict(s, x, x_count, batch, output, out_count);
  });
}

int ecall_train_join(uint64_t session, const uint8_t* run_key, size_t key_len, uint32_t worker,
                     uint32_t workers) {
  return on_protocol<Training>(session, "train_join", kTrainInit, {{run_key, key_len, "run_key"}},
                               [&](Session& s, Training& t) {
    return t.join(s, run_key, key_len, worker, workers);
  });
}

int ecall_halve_lr(uint64_t session) {
  return on_protocol<Training>(session, "halve_lr", kTrainInit, {},
                               [&](Session& s, Training& t) { return t.halve_lr(s); });
}

int ecall_export_weights(uint64_t session, uint32_t layer, double* weights, size_t count) {
  return on_protocol<Training>(session, "export_weights", kTrainInit,
                               {{weights, count, "weights"}}, [&](Session& s, Training& t) {
    return t.export_weights(s, layer, weights, count);
  });
}

int ecall_train_checkpoint_size(uint64_t session, uint64_t* size) {
  return on_protocol<Training>(session, "train_checkpoint_size", kTrainInit, {{size, 1, "size"}},
                               [&](Session&, Training& t) {
    *size = t.checkpoint_size();
    return int{VEIL_OK};
  });
}

int ecall_train_checkpoint(uint64_t session, const uint8_t* key, size_t key_len, uint8_t* blob,
                           size_t capacity, uint64_t* blob_len) {
  return on_protocol<Training>(
      session, "train_checkpoint", kTrainInit,
      {{key, key_len, "key"}, {blob, capacity, "blob"}, {blob_len, 1, "blob_len"}},
      [&](Session& s, Training& t) {
        return t.checkpoint(s, key, key_len, blob, capacity, blob_len);
      });
}

// ---- Private and verify-mode inference (inference.h) ----

constexpr const char* kInferenceInit = "ecall_inference_init";

int ecall_inference_init(uint64_t session, const veil_inference_config_t* config,
                         const veil_layer_spec_t* layers, size_t layer_count) {
  return configure<Inference>(session, "inference_init",
                              {{config, 1, "config"}, {layers, layer_count, "layers"}},
                              [&](Session& s, std::unique_ptr<Inference>* out) {
    return Inference::create(s, *config, layers, layer_count, out);
  });
}

int ecall_inference_load_layer(uint64_t session, uint32_t layer, const double* weights,
                               size_t count) {
  return on_protocol<Inference>(session, "inference_load_layer", kInferenceInit,
                                {{weights, count, "weights"}}, [&](Session& s, Inference& i) {
    return i.load_layer(s, layer, weights, count);
  });
}

int ecall_inference_precompute(uint64_t session, uint32_t rows, uint8_t* sealed,
                               size_t capacity) {
  return on_protocol<Inference>(session, "inference_precompute", kInferenceInit,
                                {{sealed, capacity, "sealed"}}, [&](Session& s, Inference& i) {
    return i.precompute(s, rows, sealed, capacity);
  });
}

int ecall_inference_slot_size(uint64_t session, uint32_t rows, uint64_t* size) {
  return on_protocol<Inference>(session, "inference_slot_size", kInferenceInit,
                                {{size, 1, "size"}},
                                [&](Session& s, Inference& i) { return i.slot_size(s, rows, size); });
}

int ecall_inference_predict(uint64_t session, const double* x, size_t x_count, size_t batch,
                            const uint8_t* sealed, size_t sealed_size, double* output,
                            size_t out_count) {
  return on_protocol<Inference>(
      session, "inference_predict", kInferenceInit,
      {{x, x_count, "x"}, {sealed, sealed_size, "sealed"}, {output, out_count, "output"}},
      [&](Session& s, Inference& i) {
        return i.predict(s, x, x_count, batch, sealed, sealed_size, output, out_count);
      });
}

int ecall_inference_train_step(uint64_t session, const double* x, size_t x_count,
                               const int32_t* labels, size_t batch, const uint8_t* sealed,
                               size_t sealed_size, veil_step_result_t* result) {
  return on_protocol<Inference>(
      session, "inference_train_step", kInferenceInit,
      {{x, x_count, "x"}, {labels, batch, "labels"}, {sealed, sealed_size, "sealed"},
       {result, 1, "result"}},
      [&](Session& s, Inference& i) {
        return i.train_step(s, x, x_count, labels, batch, sealed, sealed_size, result);
      });
}

int ecall_inference_export_head(uint64_t session, uint32_t layer, double* weights, size_t count) {
  return on_protocol<Inference>(session, "inference_export_head", kInferenceInit,
                                {{weights, count, "weights"}}, [&](Session& s, Inference& i) {
    return i.export_head(s, layer, weights, count);
  });
}

// Answers after an abort too: the host reads why the session ended.
int ecall_inference_status(uint64_t session, veil_inference_status_t* status) {
  return on_session(session, "inference_status", {{status, 1, "status"}}, [&](Session& s) {
    std::memset(status, 0, sizeof *status);
    if (const Inference* i = s.protocol<Inference>()) i->status(status);
    status->checks_passed = s.counters().checks_passed;
    status->saturated = s.counters().saturated;
    status->aborted = s.aborted() ? 1 : 0;
    return int{VEIL_OK};
  });
}
