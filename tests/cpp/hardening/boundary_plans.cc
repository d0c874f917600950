// The valid call of every ecall of edl/veil.edl, for the boundary test (see
// boundary_harness.h): each plan brings the case's session to the state the
// ecall needs and returns arguments with which the call succeeds. The model is
// the one test_bridge.cc uses: 8 features -> 16 (ReLU) -> 4 classes, batches of 8.
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "boundary_ecalls.h"  // generated: BOUNDARY_HAS_<ecall> for each ecall of the EDL
#include "boundary_harness.h"
#include "veil_u.h"
#include "../small_model.h"

namespace boundary {
namespace {

constexpr uint32_t kFeatures = 8;
constexpr uint32_t kHidden = 16;
constexpr uint32_t kClasses = 4;
constexpr uint32_t kBatch = 8;
constexpr size_t kKeyBytes = 32;  // a caller's AES-256 sealing key

template <class T>
std::vector<uint8_t> bytes_of(const T* values, size_t count) {
  const auto* first = reinterpret_cast<const uint8_t*>(values);
  return std::vector<uint8_t>(first, first + count * sizeof(T));
}
template <class T>
std::vector<uint8_t> bytes_of(const std::vector<T>& values) {
  return bytes_of(values.data(), values.size());
}
template <class T>
std::vector<uint8_t> bytes_of(const T& value) {
  return bytes_of(&value, 1);
}

// Takes the call's results as values: call first, then require (argument order is unspecified).
void require(Harness& h, uint64_t session, const char* call, oe_result_t bridge, int status) {
  if (bridge != OE_OK || status != VEIL_OK)
    throw SetupError(std::string(call) + " failed (" + oe_result_str(bridge) + ", status " +
                     std::to_string(status) + "): " + h.last_error(session));
}

veil_train_config_t train_config() { return veil_test::small_wire_config(kBatch); }

veil_inference_config_t inference_config(uint32_t head_layers = 0) {
  veil_inference_config_t c{};
  c.head_layers = head_layers;  // private fine-tuning: the last layers train in the enclave
  c.head_lr = 0.125;
  c.layer_count = 2;
  c.mode = 1;  // private: precompute and sealed slots exist only there
  c.loss = 0;
  c.frac_act = 8;
  c.frac_weights = 10;
  c.act_clip = 64;
  return c;
}

std::vector<veil_layer_spec_t> model() { return {{kFeatures, kHidden, 1}, {kHidden, kClasses, 0}}; }

std::vector<double> batch_x() {
  std::vector<double> x(kBatch * kFeatures);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.125 * static_cast<double>(i % 7) - 0.25;
  return x;
}

std::vector<int32_t> batch_labels() {
  std::vector<int32_t> y(kBatch);
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int32_t>(i % kClasses);
  return y;
}

std::vector<uint8_t> caller_key() {
  std::vector<uint8_t> key(kKeyBytes);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(7 * i + 1);
  return key;
}

// One layer's real weights, (inputs+1) x outputs with the bias row last.
std::vector<double> layer_weights(const veil_layer_spec_t& layer) {
  std::vector<double> w(size_t{layer.inputs + 1} * layer.outputs);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.0625 * static_cast<double>(i % 5) - 0.125;
  return w;
}

Call session_call(uint64_t session) {
  Call call;
  call.scalars["session"] = static_cast<int64_t>(session);
  return call;
}

void start_training(Harness& h, uint64_t session) {
  const veil_train_config_t c = train_config();
  const std::vector<veil_layer_spec_t> l = model();
  int status = -1;
  const oe_result_t bridge =
      ecall_train_init(h.enclave(), &status, session, &c, l.data(), l.size());
  require(h, session, "ecall_train_init", bridge, status);
}

void start_inference(Harness& h, uint64_t session, bool load_layers, uint32_t head_layers = 0) {
  const veil_inference_config_t c = inference_config(head_layers);
  const std::vector<veil_layer_spec_t> l = model();
  int status = -1;
  const oe_result_t bridge =
      ecall_inference_init(h.enclave(), &status, session, &c, l.data(), l.size());
  require(h, session, "ecall_inference_init", bridge, status);
  if (!load_layers) return;
  for (uint32_t i = 0; i < l.size(); ++i) {
    const std::vector<double> w = layer_weights(l[i]);
    const oe_result_t bridge =
        ecall_inference_load_layer(h.enclave(), &status, session, i, w.data(), w.size());
    require(h, session, "ecall_inference_load_layer", bridge, status);
  }
}

// The bytes of a slot of batches of `rows`, as the enclave says.
size_t slot_size(Harness& h, uint64_t session, uint32_t rows) {
  uint64_t size = 0;
  int status = -1;
  const oe_result_t bridge = ecall_inference_slot_size(h.enclave(), &status, session, rows, &size);
  require(h, session, "ecall_inference_slot_size", bridge, status);
  return static_cast<size_t>(size);
}

std::vector<uint8_t> precompute_slot(Harness& h, uint64_t session) {
  std::vector<uint8_t> sealed(slot_size(h, session, kBatch));
  int status = -1;
  const oe_result_t bridge = ecall_inference_precompute(h.enclave(), &status, session, kBatch,
                                                        sealed.data(), sealed.size());
  require(h, session, "ecall_inference_precompute", bridge, status);
  return sealed;
}

uint64_t checkpoint_size(Harness& h, uint64_t session) {
  uint64_t size = 0;
  int status = -1;
  const oe_result_t bridge = ecall_train_checkpoint_size(h.enclave(), &status, session, &size);
  require(h, session, "ecall_train_checkpoint_size", bridge, status);
  return size;
}

// ---- sessions -------------------------------------------------------------------

Call open_session(Harness&) { return Call{}; }

Call close_session(Harness& h) { return session_call(h.session()); }

// A lent thread returns once its session closes: close a session of its own
// from another thread a little later.
Call worker(Harness& h) {
  const uint64_t session = h.open_session();
  std::thread([enclave = h.enclave(), session] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int rc = VEIL_OK;
    (void)ecall_close_session(enclave, &rc, session);
  }).detach();
  return session_call(session);
}

Call get_info(Harness&) { return Call{}; }

Call last_error(Harness& h) {
  Call call = session_call(h.session());
  call.scalars["capacity"] = 64;
  call.valid_larger = call.valid_smaller = {"capacity"};  // the message is truncated to fit
  return call;
}

Call session_stats(Harness& h) {
  start_training(h, h.session());
  return session_call(h.session());
}

// ---- verify training ----------------------------------------------------------------

Call train_init(Harness& h) {
  Call call = session_call(h.session());
  const std::vector<veil_layer_spec_t> l = model();
  call.inputs["config"] = bytes_of(train_config());
  call.inputs["layers"] = bytes_of(l);
  call.scalars["layer_count"] = static_cast<int64_t>(l.size());
  return call;
}

Call train_step(Harness& h) {
  start_training(h, h.session());
  Call call = session_call(h.session());
  call.inputs["x"] = bytes_of(batch_x());
  call.scalars["x_count"] = kBatch * kFeatures;
  call.inputs["labels"] = bytes_of(batch_labels());
  call.scalars["batch"] = kBatch;
  return call;
}

Call predict(Harness& h) {
  start_training(h, h.session());
  Call call = session_call(h.session());
  call.inputs["x"] = bytes_of(batch_x());
  call.scalars["x_count"] = kBatch * kFeatures;
  call.scalars["batch"] = kBatch;
  call.scalars["out_count"] = kBatch * kClasses;
  return call;
}

Call halve_lr(Harness& h) {
  start_training(h, h.session());
  return session_call(h.session());
}

// A run of one worker: it needs no other worker's message to join.
Call train_join(Harness& h) {
  start_training(h, h.session());
  Call call = session_call(h.session());
  const std::vector<uint8_t> key = caller_key();
  call.inputs["run_key"] = key;
  call.scalars["key_len"] = static_cast<int64_t>(key.size());
  call.scalars["worker"] = 0;
  call.scalars["workers"] = 1;
  return call;
}

Call export_weights(Harness& h) {
  start_training(h, h.session());
  Call call = session_call(h.session());
  call.scalars["layer"] = 0;
  call.scalars["count"] = (kFeatures + 1) * kHidden;
  return call;
}

Call train_checkpoint_size(Harness& h) {
  start_training(h, h.session());
  return session_call(h.session());
}

Call train_checkpoint(Harness& h) {
  start_training(h, h.session());
  Call call = session_call(h.session());
  const std::vector<uint8_t> key = caller_key();
  call.inputs["key"] = key;
  call.scalars["key_len"] = static_cast<int64_t>(key.size());
  call.scalars["capacity"] = static_cast<int64_t>(checkpoint_size(h, h.session()));
  call.valid_larger = {"capacity"};  // blob_len reports the bytes written
  return call;
}

Call train_restore(Harness& h) {
  // A checkpoint of another session, restored by the case's session.
  const uint64_t source = h.open_session();
  start_training(h, source);
  const std::vector<uint8_t> key = caller_key();
  std::vector<uint8_t> blob(checkpoint_size(h, source));
  uint64_t written = 0;
  int status = -1;
  const oe_result_t bridge = ecall_train_checkpoint(h.enclave(), &status, source, key.data(),
                                                    key.size(), blob.data(), blob.size(), &written);
  require(h, source, "ecall_train_checkpoint", bridge, status);
  blob.resize(written);
  // The weights kept beside the checkpoint go to the case's device through the
  // ocall router, as the host's restore sends them (the router learns the shapes).
  for (uint32_t l = 0; l < model().size(); ++l) {
    const size_t rows = model()[l].inputs + 1, cols = model()[l].outputs;
    std::vector<double> w(rows * cols);
    h.device_of(source).download(l, w.data());
    if (ocall_device_upload(h.session(), l, w.data(), rows, cols, w.size()) != VEIL_OK)
      throw SetupError("uploading layer " + std::to_string(l) + " to the restoring session failed");
  }

  Call call = train_init(h);
  call.inputs["key"] = key;
  call.scalars["key_len"] = static_cast<int64_t>(key.size());
  call.inputs["blob"] = blob;
  call.scalars["blob_len"] = static_cast<int64_t>(blob.size());
  return call;
}

// ---- inference ------------------------------------------------------------------------

Call inference_init(Harness& h) {
  Call call = session_call(h.session());
  const std::vector<veil_layer_spec_t> l = model();
  call.inputs["config"] = bytes_of(inference_config());
  call.inputs["layers"] = bytes_of(l);
  call.scalars["layer_count"] = static_cast<int64_t>(l.size());
  return call;
}

Call inference_load_layer(Harness& h) {
  start_inference(h, h.session(), false);
  Call call = session_call(h.session());
  const std::vector<double> w = layer_weights(model()[0]);
  call.scalars["layer"] = 0;
  call.inputs["weights"] = bytes_of(w);
  call.scalars["count"] = static_cast<int64_t>(w.size());
  return call;
}

Call inference_precompute(Harness& h) {
  start_inference(h, h.session(), true);
  Call call = session_call(h.session());
  call.scalars["rows"] = kBatch;
  call.scalars["capacity"] = static_cast<int64_t>(slot_size(h, h.session(), kBatch));
  return call;
}

Call inference_slot_size(Harness& h) {
  start_inference(h, h.session(), true);
  Call call = session_call(h.session());
  call.scalars["rows"] = kBatch;
  return call;
}

Call inference_predict(Harness& h) {
  start_inference(h, h.session(), true);
  const std::vector<uint8_t> sealed = precompute_slot(h, h.session());
  Call call = session_call(h.session());
  call.inputs["x"] = bytes_of(batch_x());
  call.scalars["x_count"] = kBatch * kFeatures;
  call.scalars["batch"] = kBatch;
  call.inputs["sealed"] = sealed;
  call.scalars["sealed_size"] = static_cast<int64_t>(sealed.size());
  call.scalars["out_count"] = kBatch * kClasses;
  return call;
}

Call inference_train_step(Harness& h) {
  start_inference(h, h.session(), true, 1);
  const std::vector<uint8_t> sealed = precompute_slot(h, h.session());
  Call call = session_call(h.session());
  call.inputs["x"] = bytes_of(batch_x());
  call.scalars["x_count"] = kBatch * kFeatures;
  call.inputs["labels"] = bytes_of(batch_labels());
  call.scalars["batch"] = kBatch;
  call.inputs["sealed"] = sealed;
  call.scalars["sealed_size"] = static_cast<int64_t>(sealed.size());
  return call;
}

Call inference_export_head(Harness& h) {
  start_inference(h, h.session(), true, 1);
  Call call = session_call(h.session());
  call.scalars["layer"] = 1;
  call.scalars["count"] = static_cast<int64_t>((kHidden + 1) * kClasses);
  return call;
}

Call inference_status(Harness& h) {
  start_inference(h, h.session(), true);
  return session_call(h.session());
}

// ---- the benchmarks' in-enclave baseline, while edl/veil.edl declares it ----------


const std::vector<std::pair<std::string, Plan>>& plans() {
  static const std::vector<std::pair<std::string, Plan>> table = {
      {"ecall_open_session", &open_session},
      {"ecall_close_session", &close_session},
      {"ecall_worker", &worker},
      {"ecall_get_info", &get_info},
      {"ecall_last_error", &last_error},
      {"ecall_session_stats", &session_stats},
      {"ecall_train_init", &train_init},
      {"ecall_train_step", &train_step},
      {"ecall_predict", &predict},
      {"ecall_train_join", &train_join},
      {"ecall_halve_lr", &halve_lr},
      {"ecall_export_weights", &export_weights},
      {"ecall_train_checkpoint_size", &train_checkpoint_size},
      {"ecall_train_checkpoint", &train_checkpoint},
      {"ecall_train_restore", &train_restore},
      {"ecall_inference_init", &inference_init},
      {"ecall_inference_load_layer", &inference_load_layer},
      {"ecall_inference_precompute", &inference_precompute},
      {"ecall_inference_slot_size", &inference_slot_size},
      {"ecall_inference_predict", &inference_predict},
      {"ecall_inference_train_step", &inference_train_step},
      {"ecall_inference_export_head", &inference_export_head},
      {"ecall_inference_status", &inference_status},
  };
  return table;
}

}  // namespace

Plan find_plan(const std::string& ecall) {
  for (const auto& [name, plan] : plans())
    if (name == ecall) return plan;
  return nullptr;
}

std::vector<std::string> planned_ecalls() {
  std::vector<std::string> names;
  for (const auto& entry : plans()) names.push_back(entry.first);
  return names;
}

}  // namespace boundary
