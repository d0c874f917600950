// Writes the seed corpora of the harnesses:
//   make_seeds <ecall_dispatch dir> <train_config dir> <checkpoint dir>
// The ecall_dispatch seeds are real marshalled calls: this program calls the
// generated host stubs of veil_u.h (in libveil_host) and records what they hand to
// oe_call_enclave_function, which it defines itself (an executable's definition
// takes precedence over the host library's). So the seeds always match the
// current EDL and generator; the session argument is the harness's placeholder.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <openenclave/edger8r/host.h>

#include "fuzz_common.h"

namespace {

std::vector<uint8_t> g_calls;  // the sequence being recorded, in the harness's format

void put_le(std::vector<uint8_t>& out, uint32_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fclose(f);
}

}  // namespace

extern "C" oe_result_t oe_call_enclave_function(oe_enclave_t*, uint32_t function_id,
                                                const void* input, size_t input_size, void*,
                                                size_t output_size, size_t*) {
  if (input_size > 0xFFFF || function_id > 0xFF) {
    std::fprintf(stderr, "make_seeds: call %u of %zu bytes does not fit the seed format\n",
                 function_id, input_size);
    std::exit(1);
  }
  g_calls.push_back(static_cast<uint8_t>(function_id));
  g_calls.push_back(1);  // write the live session over the placeholder
  put_le(g_calls, static_cast<uint32_t>(input_size), 2);
  put_le(g_calls, static_cast<uint32_t>(output_size), 4);
  const auto* p = static_cast<const uint8_t*>(input);
  g_calls.insert(g_calls.end(), p, p + input_size);
  return OE_UNEXPECTED;  // recorded, not run
}

namespace {

using veil_fuzz::kSessionPlaceholder;
// The stubs never look at the enclave handle; the recorder above ignores it.
oe_enclave_t* const kNoEnclave = reinterpret_cast<oe_enclave_t*>(uintptr_t{16});

veil_train_config_t train_config(uint32_t layers, int32_t loss, uint32_t max_batch) {
  veil_train_config_t c{};
  c.layer_count = layers;
  c.loss = loss;
  c.frac_act = 8;
  c.frac_grad = 12;
  c.lr_exp = 3;
  c.max_batch = max_batch;
  c.seed = 1;
  c.act_clip = 64;
  c.grad_clip = 8;
  c.weight_max = 8;
  return c;
}

void dispatch_seeds(const std::string& dir) {
  const uint64_t s = kSessionPlaceholder;
  int rc = 0;
  const size_t rows = 4, features = 8, hidden = 16, classes = 4;
  std::vector<double> x(rows * features, 0.5), out(rows * classes);
  std::vector<int32_t> y = {0, 1, 2, 3};
  std::vector<veil_layer_spec_t> layers = {{8, 16, 1}, {16, 4, 0}};
  veil_step_result_t step{};
  int n = 0;
  auto save = [&](const char* name) {
    write_file(dir + "/" + std::to_string(n++) + "-" + name, g_calls);
    g_calls.clear();
  };

  veil_train_config_t tc = train_config(2, 0, 8);
  ecall_train_init(kNoEnclave, &rc, s, &tc, layers.data(), layers.size());
  ecall_train_step(kNoEnclave, &rc, s, x.data(), x.size(), y.data(), rows, &step);
  ecall_predict(kNoEnclave, &rc, s, x.data(), x.size(), rows, out.data(), out.size());
  std::vector<double> w((features + 1) * hidden);
  ecall_export_weights(kNoEnclave, &rc, s, 0, w.data(), w.size());
  ecall_halve_lr(kNoEnclave, &rc, s);
  ecall_train_step(kNoEnclave, &rc, s, x.data(), x.size(), y.data(), rows, &step);
  veil_session_stats_t stats{};
  ecall_session_stats(kNoEnclave, &rc, s, &stats);
  char message[256];
  ecall_last_error(kNoEnclave, &rc, s, message, sizeof message);
  save("training");

  // A run of one worker (no other worker's message to wait for), then a batch with no
  // rows, which only a worker of a run may send.
  const std::vector<uint8_t> run_key(32, 0x3C);
  ecall_train_init(kNoEnclave, &rc, s, &tc, layers.data(), layers.size());
  ecall_train_join(kNoEnclave, &rc, s, run_key.data(), run_key.size(), 0, 1);
  ecall_train_step(kNoEnclave, &rc, s, x.data(), x.size(), y.data(), rows, &step);
  ecall_train_step(kNoEnclave, &rc, s, nullptr, 0, nullptr, 0, &step);
  save("run-of-one-worker");

  // Checkpoint and restore. The blob is not a real checkpoint (nothing runs here),
  // so the restore is refused; the fuzzer starts from well-formed calls.
  const std::vector<uint8_t> key(32, 0x5A);
  uint64_t checkpoint_bytes = 0, blob_len = 0;
  std::vector<uint8_t> blob(2048);
  ecall_train_init(kNoEnclave, &rc, s, &tc, layers.data(), layers.size());
  ecall_train_checkpoint_size(kNoEnclave, &rc, s, &checkpoint_bytes);
  ecall_train_checkpoint(kNoEnclave, &rc, s, key.data(), key.size(), blob.data(), blob.size(),
                         &blob_len);
  ecall_train_restore(kNoEnclave, &rc, s, &tc, layers.data(), layers.size(), key.data(),
                      key.size(), blob.data(), blob.size());
  save("checkpoint");

  veil_train_config_t mse = train_config(2, 1, 4);
  std::vector<veil_layer_spec_t> seed_layers = {{8, 16, 2}, {16, 4, 2}};
  ecall_train_init(kNoEnclave, &rc, s, &mse, seed_layers.data(), seed_layers.size());
  ecall_train_step(kNoEnclave, &rc, s, x.data(), x.size(), y.data(), rows, &step);
  save("training-mse");

  // An inference session of the two layers with fixed weights; head_layers > 0
  // trains the last ones in the enclave (private fine-tuning).
  std::vector<double> w0((features + 1) * hidden, 0.125), w1((hidden + 1) * classes, -0.25);
  auto start_inference = [&](int32_t mode, uint32_t head_layers) {
    veil_inference_config_t ic{};
    ic.layer_count = 2;
    ic.mode = mode;
    ic.frac_act = 8;
    ic.frac_weights = 10;
    ic.act_clip = 64;
    ic.head_layers = head_layers;
    ic.head_lr = head_layers > 0 ? 0.25 : 0.0;
    ecall_inference_init(kNoEnclave, &rc, s, &ic, layers.data(), layers.size());
    ecall_inference_load_layer(kNoEnclave, &rc, s, 0, w0.data(), w0.size());
    ecall_inference_load_layer(kNoEnclave, &rc, s, 1, w1.data(), w1.size());
  };
  for (int32_t mode : {1, 0}) {
    start_inference(mode, 0);
    std::vector<uint8_t> sealed;
    if (mode == 1) {
      // 24-byte header, 6 bytes per masked value, 16-byte tag, per layer.
      sealed.resize((24 + 6 * rows * hidden + 16) + (24 + 6 * rows * classes + 16));
      ecall_inference_precompute(kNoEnclave, &rc, s, rows, sealed.data(), sealed.size());
    }
    ecall_inference_predict(kNoEnclave, &rc, s, x.data(), x.size(), rows,
                            sealed.empty() ? nullptr : sealed.data(), sealed.size(), out.data(),
                            out.size());
    veil_inference_status_t status{};
    ecall_inference_status(kNoEnclave, &rc, s, &status);
    save(mode == 1 ? "inference-private" : "inference-verify");
  }

  {  // Private fine-tuning: layer 0 frozen, layer 1 trained in the enclave.
    start_inference(1, 1);
    std::vector<uint8_t> sealed(24 + 6 * rows * hidden + 16);  // the frozen layer only
    ecall_inference_precompute(kNoEnclave, &rc, s, rows, sealed.data(), sealed.size());
    ecall_inference_train_step(kNoEnclave, &rc, s, x.data(), x.size(), y.data(), rows,
                               sealed.data(), sealed.size(), &step);
    ecall_inference_export_head(kNoEnclave, &rc, s, 1, w1.data(), w1.size());
    save("inference-finetune");
  }

  // NULL pointers with non-zero counts: the bridge passes them through as NULL.
  ecall_train_init(kNoEnclave, &rc, s, nullptr, layers.data(), layers.size());
  ecall_train_init(kNoEnclave, &rc, s, &tc, nullptr, layers.size());
  ecall_train_init(kNoEnclave, &rc, s, &tc, layers.data(), layers.size());
  ecall_train_step(kNoEnclave, &rc, s, nullptr, x.size(), y.data(), rows, &step);
  ecall_train_step(kNoEnclave, &rc, s, x.data(), x.size(), nullptr, rows, &step);
  ecall_train_step(kNoEnclave, &rc, s, x.data(), x.size(), y.data(), rows, nullptr);
  ecall_predict(kNoEnclave, &rc, s, nullptr, x.size(), rows, out.data(), out.size());
  ecall_predict(kNoEnclave, &rc, s, x.data(), x.size(), rows, nullptr, out.size());
  ecall_export_weights(kNoEnclave, &rc, s, 0, nullptr, w.size());
  ecall_session_stats(kNoEnclave, &rc, s, nullptr);
  ecall_last_error(kNoEnclave, &rc, s, nullptr, 64);
  save("null-training");
  ecall_train_init(kNoEnclave, &rc, s, &tc, layers.data(), layers.size());
  ecall_train_checkpoint_size(kNoEnclave, &rc, s, nullptr);
  ecall_train_checkpoint(kNoEnclave, &rc, s, nullptr, key.size(), blob.data(), blob.size(),
                         &blob_len);
  ecall_train_checkpoint(kNoEnclave, &rc, s, key.data(), key.size(), nullptr, blob.size(),
                         &blob_len);
  ecall_train_checkpoint(kNoEnclave, &rc, s, key.data(), key.size(), blob.data(), blob.size(),
                         nullptr);
  save("null-checkpoint");
  ecall_train_restore(kNoEnclave, &rc, s, nullptr, layers.data(), layers.size(), key.data(),
                      key.size(), blob.data(), blob.size());
  ecall_train_restore(kNoEnclave, &rc, s, &tc, nullptr, layers.size(), key.data(), key.size(),
                      blob.data(), blob.size());
  ecall_train_restore(kNoEnclave, &rc, s, &tc, layers.data(), layers.size(), nullptr, key.size(),
                      blob.data(), blob.size());
  ecall_train_restore(kNoEnclave, &rc, s, &tc, layers.data(), layers.size(), key.data(),
                      key.size(), nullptr, blob.size());
  save("null-restore");
  ecall_open_session(kNoEnclave, &rc, nullptr);
  ecall_get_info(kNoEnclave, &rc, nullptr);
  save("null-session");
  {
    veil_inference_config_t ic{};
    ic.layer_count = 2;
    ic.mode = 1;
    ic.frac_act = 8;
    ic.frac_weights = 10;
    ic.act_clip = 64;
    ecall_inference_init(kNoEnclave, &rc, s, nullptr, layers.data(), layers.size());
    ecall_inference_init(kNoEnclave, &rc, s, &ic, nullptr, layers.size());
    ecall_inference_init(kNoEnclave, &rc, s, &ic, layers.data(), layers.size());
    ecall_inference_load_layer(kNoEnclave, &rc, s, 0, nullptr, w0.size());
    ecall_inference_load_layer(kNoEnclave, &rc, s, 0, w0.data(), w0.size());
    ecall_inference_load_layer(kNoEnclave, &rc, s, 1, w1.data(), w1.size());
    std::vector<uint8_t> sealed((24 + 6 * rows * hidden + 16) + (24 + 6 * rows * classes + 16));
    ecall_inference_precompute(kNoEnclave, &rc, s, rows, nullptr, sealed.size());
    ecall_inference_predict(kNoEnclave, &rc, s, nullptr, x.size(), rows, sealed.data(),
                            sealed.size(), out.data(), out.size());
    ecall_inference_predict(kNoEnclave, &rc, s, x.data(), x.size(), rows, nullptr, sealed.size(),
                            nullptr, out.size());
    ecall_inference_status(kNoEnclave, &rc, s, nullptr);
    save("null-inference");
  }

  uint64_t opened = 0;
  ecall_open_session(kNoEnclave, &rc, &opened);
  veil_info_t info{};
  ecall_get_info(kNoEnclave, &rc, &info);
  ecall_last_error(kNoEnclave, &rc, 0, message, sizeof message);
  ecall_close_session(kNoEnclave, &rc, s);
  ecall_train_step(kNoEnclave, &rc, s, x.data(), x.size(), y.data(), rows, &step);
  save("session");
}

void config_seed(const std::string& path, uint8_t flags, const veil_train_config_t& c,
                 const std::vector<veil_layer_spec_t>& layers) {
  std::vector<uint8_t> bytes = {flags, static_cast<uint8_t>(layers.size())};
  const auto* p = reinterpret_cast<const uint8_t*>(&c);
  bytes.insert(bytes.end(), p, p + sizeof c);
  const auto* l = reinterpret_cast<const uint8_t*>(layers.data());
  bytes.insert(bytes.end(), l, l + layers.size() * sizeof(veil_layer_spec_t));
  // The batch: a row count byte, then x values and labels (repeating a pattern).
  bytes.push_back(3);
  for (int i = 0; i < 4 * 64; ++i) {
    double v = 0.25 * (i % 7) - 0.5;
    const auto* b = reinterpret_cast<const uint8_t*>(&v);
    bytes.insert(bytes.end(), b, b + sizeof v);
  }
  for (int i = 0; i < 4 * 5; ++i) bytes.push_back(static_cast<uint8_t>(i % 3));
  write_file(path, bytes);
}

void config_seeds(const std::string& dir) {
  config_seed(dir + "/0-relu", 0, train_config(2, 0, 8), {{8, 16, 1}, {16, 4, 0}});
  config_seed(dir + "/1-sigmoid-mse", 0, train_config(3, 1, 4),
              {{6, 12, 2}, {12, 12, 3}, {12, 3, 4}});
  veil_train_config_t wide = train_config(1, 0, 2);
  wide.frac_act = 16;
  wide.frac_grad = 20;
  wide.act_clip = 1e3;
  config_seed(dir + "/2-limbs", 0, wide, {{64, 10, 0}});
  config_seed(dir + "/3-mismatched-count", 0, train_config(3, 0, 8), {{8, 16, 1}, {16, 4, 0}});
  config_seed(dir + "/4-null-layers", 2, train_config(2, 0, 8), {{8, 16, 1}, {16, 4, 0}});
  // act_clip < 1: the bias entry 2^f_a is the widest operand (an honest device once
  // failed its checks here; found by this harness).
  veil_train_config_t narrow = train_config(1, 0, 2);
  narrow.frac_act = 18;
  narrow.frac_grad = 20;
  narrow.act_clip = 0x1p-18;
  narrow.grad_clip = 2;
  config_seed(dir + "/5-sub-unit-act-clip", 0, narrow, {{1, 2, 0}});
  // A convolution (1 x 4 x 4 input, 3x3, padding 1, ReLU, 2x2 max pooling) and the
  // dense layer that flattens its 2 x 2 x 2 output (docs/design.md §4.4).
  config_seed(dir + "/6-conv-pool", 0, train_config(2, 0, 4),
              {{9, 2, 1, VEIL_LAYER_KIND_CONV2D, 1, 4, 4, 3, 1, 1, VEIL_POOL_MAX, 2}, {8, 3, 0}});
}

// fuzz_checkpoint's input layout (see fuzz_checkpoint.cc): an untouched round
// trip, then one change each, so every branch starts from a seed.
struct CheckpointSeed {
  uint16_t flags = 0;
  uint8_t key_len = 32;
  int8_t capacity_delta = 0;
  uint8_t restore_key_len = 32;
  uint8_t key_xor = 0;
  uint8_t layer_count = 2;
  uint8_t config_at = 0, config_xor = 0;
  uint8_t layers_at = 0, layers_xor = 0;
  int16_t blob_delta = 0;
  uint8_t weight_layer = 0, weight_at = 0, weight_change = 0;
  std::vector<std::pair<uint16_t, uint8_t>> edits;
};

void checkpoint_seed(const std::string& path, const CheckpointSeed& c) {
  std::vector<uint8_t> bytes;
  put_le(bytes, c.flags, 2);
  bytes.push_back(c.key_len);
  bytes.push_back(static_cast<uint8_t>(c.capacity_delta));
  for (uint8_t i = 0; i < 32; ++i) bytes.push_back(static_cast<uint8_t>(0xA0 + i));
  bytes.insert(bytes.end(), {c.restore_key_len, c.key_xor, c.layer_count, c.config_at,
                             c.config_xor, c.layers_at, c.layers_xor});
  put_le(bytes, static_cast<uint16_t>(c.blob_delta), 2);
  bytes.insert(bytes.end(), {c.weight_layer, c.weight_at, c.weight_change});
  for (const auto& [at, x] : c.edits) {
    put_le(bytes, at, 2);
    bytes.push_back(x);
  }
  write_file(path, bytes);
}

void checkpoint_seeds(const std::string& dir) {
  int n = 0;
  auto seed = [&](const char* name, const CheckpointSeed& c) {
    checkpoint_seed(dir + "/" + std::to_string(n++) + "-" + name, c);
  };
  CheckpointSeed c;
  seed("round-trip", c);
  c.flags = 1u << 4;
  seed("after-a-step", c);
  const char* nulls[] = {"size-null", "key-null", "blob-null", "blob-len-null", "",
                         "restore-config-null", "restore-layers-null", "restore-key-null",
                         "restore-blob-null"};
  for (uint16_t bit = 0; bit <= 8; ++bit) {
    if (bit == 4) continue;  // the training step above
    c = CheckpointSeed{};
    c.flags = static_cast<uint16_t>(1u << bit);
    seed(nulls[bit], c);
  }
  c = CheckpointSeed{};
  c.capacity_delta = -1;
  seed("capacity-short", c);
  c = CheckpointSeed{};
  c.key_len = 31;
  c.restore_key_len = 33;
  seed("key-lengths", c);
  c = CheckpointSeed{};
  c.key_xor = 1;
  seed("other-key", c);
  c = CheckpointSeed{};
  c.layer_count = 3;
  c.config_at = 20;  // max_batch
  c.config_xor = 2;
  seed("other-model", c);
  c = CheckpointSeed{};
  c.blob_delta = -1;
  c.edits = {{40, 0x80}};
  seed("tampered-blob", c);
  c = CheckpointSeed{};
  c.flags = 1u << 9;
  c.weight_layer = 1;
  c.weight_at = 5;
  seed("stored-weight-altered", c);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr,
                 "usage: make_seeds <ecall_dispatch dir> <train_config dir> <checkpoint dir>\n");
    return 2;
  }
  dispatch_seeds(argv[1]);
  config_seeds(argv[2]);
  checkpoint_seeds(argv[3]);
  return 0;
}
