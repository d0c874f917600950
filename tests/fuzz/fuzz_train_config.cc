// libFuzzer harness: the enclave's parsing of model descriptions. Arbitrary
// veil_train_config_t and veil_layer_spec_t bytes go to ecall_train_init through
// the generated host stub; when the enclave accepts them, the harness trains one
// step, predicts, exports a layer and halves the learning rate with them, so
// every figure of the configuration reaches the code that uses it. The device
// is an honest in-process CPU device.
//
// Input layout:
//   u8 flags        bit 0: config NULL; bit 1: layers NULL
//   u8 layer_count  the count handed to the ecall (it may disagree with the config's)
//   veil_train_config_t, raw bytes (zero-padded when the input is short)
//   layer_count x veil_layer_spec_t, raw bytes (zero-padded)
//   the rest: bytes for the batch (its size, x values, labels)
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_common.h"

namespace {

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  // Copies n bytes into out, zero-filling what the input lacks.
  void bytes(void* out, size_t n) {
    size_t take = std::min(n, size_);
    std::memcpy(out, data_, take);
    std::memset(static_cast<uint8_t*>(out) + take, 0, n - take);
    data_ += take;
    size_ -= take;
  }
  uint8_t byte() {
    uint8_t b = 0;
    bytes(&b, 1);
    return b;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

constexpr size_t kMaxStepRows = 4;

// Models the enclave accepts take time in proportion to their size, up to its limit
// of 2 GiB of buffers: seconds each, which would starve a short run. The harness
// leaves out descriptions whose estimated buffers fall between 8 MiB and 4 GiB;
// smaller ones are trained, larger ones are refused (cheaply) by the enclave.
// Rows per example of a layer's products: a convolution's output positions
// (docs/design.md §4.4), 1 for a dense layer or a geometry the enclave refuses.
double positions(const veil_layer_spec_t& l) {
  if (l.kind != VEIL_LAYER_KIND_CONV2D || l.stride == 0 || l.kernel == 0) return 1;
  const double h = l.height + 2.0 * l.padding - l.kernel, w = l.width + 2.0 * l.padding - l.kernel;
  if (h < 0 || w < 0) return 1;
  return (std::floor(h / l.stride) + 1) * (std::floor(w / l.stride) + 1);
}

bool expensive(const veil_train_config_t& config, const std::vector<veil_layer_spec_t>& layers) {
  double bytes = 0, largest = 0;
  for (const veil_layer_spec_t& l : layers) {
    if (l.inputs == 0 || l.outputs == 0 || l.inputs > 65536 || l.outputs > 65536)
      return false;  // refused at once
    bytes += 8.0 * config.max_batch * positions(l) * (2.0 * (l.inputs + 1) + 3.0 * l.outputs);
    if (l.kind == VEIL_LAYER_KIND_CONV2D)  // the input tensor
      bytes += 8.0 * config.max_batch * l.channels * l.height * l.width;
    largest = std::max(largest, (l.inputs + 1.0) * l.outputs);
  }
  bytes += 16.0 * largest;
  return bytes > 8.0 * (1 << 20) && bytes < 4.0 * (1u << 30);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veil_fuzz::Session session;
  oe_enclave_t* enclave = veil_fuzz::enclave();
  Reader in(data, size);
  const uint8_t flags = in.byte();
  const size_t layer_count = in.byte();
  veil_train_config_t config;
  in.bytes(&config, sizeof config);
  std::vector<veil_layer_spec_t> layers(layer_count);
  if (layer_count) in.bytes(layers.data(), layers.size() * sizeof(veil_layer_spec_t));

  if (expensive(config, layers)) return 0;

  int rc = -1;
  oe_result_t r = ecall_train_init(enclave, &rc, session.id(), (flags & 1) ? nullptr : &config,
                                   (flags & 2) ? nullptr : layers.data(), layer_count);
  veil_fuzz::expect_alive(r, "ecall_train_init");
  if (r != OE_OK || rc != VEIL_OK) {
    // Every refusal explains itself.
    if (r == OE_OK && veil::detail::last_error(enclave, session.id()).empty()) __builtin_trap();
    return 0;
  }

  // Accepted: the enclave checked these, so the harness may rely on them.
  const veil_layer_spec_t& first = layers.front();
  const size_t features = first.kind == VEIL_LAYER_KIND_CONV2D
                              ? size_t{first.channels} * first.height * first.width
                              : first.inputs;
  const size_t classes = layers.back().outputs;
  const size_t rows = 1 + in.byte() % std::min<size_t>(config.max_batch, kMaxStepRows);
  std::vector<double> x(rows * features);
  in.bytes(x.data(), x.size() * sizeof(double));
  std::vector<int32_t> labels(rows);
  in.bytes(labels.data(), labels.size() * sizeof(int32_t));
  for (int32_t& l : labels) {
    if (in.byte() & 1) l = static_cast<int32_t>(static_cast<uint32_t>(l) % classes);
  }
  veil_step_result_t result{};
  r = ecall_train_step(enclave, &rc, session.id(), x.data(), x.size(), labels.data(), rows, &result);
  veil_fuzz::expect_alive(r, "ecall_train_step");
  std::vector<double> out(rows * classes);
  r = ecall_predict(enclave, &rc, session.id(), x.data(), x.size(), rows, out.data(), out.size());
  veil_fuzz::expect_alive(r, "ecall_predict");
  const uint32_t layer = in.byte() % layer_count;
  std::vector<double> weights(static_cast<size_t>(layers[layer].inputs + 1) * layers[layer].outputs);
  r = ecall_export_weights(enclave, &rc, session.id(), layer, weights.data(), weights.size());
  veil_fuzz::expect_alive(r, "ecall_export_weights");
  r = ecall_halve_lr(enclave, &rc, session.id());
  veil_fuzz::expect_alive(r, "ecall_halve_lr");
  veil_session_stats_t stats{};
  r = ecall_session_stats(enclave, &rc, session.id(), &stats);
  veil_fuzz::expect_alive(r, "ecall_session_stats");
  // An honest device never fails a check.
  if (r == OE_OK && rc == VEIL_OK && stats.aborted) __builtin_trap();
  return 0;
}
