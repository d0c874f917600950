// Host side of the ocalls declared in edl/veil.edl: route each device request
// to the Device bound to the session and time it. Everything here is untrusted;
// the enclave checks whatever comes back.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "bridge.h"
#include "veil/device.h"
#include "veil/enclave.h"
#include "veil/trainer.h"

namespace veil::detail {
namespace {

// What the host knows of one layer on the device.
struct DeviceLayer {
  size_t rows = 0;  // from upload: buffers are sized against the shape
  size_t cols = 0;
  // The operands the enclave asked the host to keep: A of the layer's latest
  // forward, dZ of its latest backward. The update then asks to reuse them,
  // so a step sends each across the enclave boundary once, whatever the
  // device is. (Which A and dZ the device really uses is for the enclave's
  // next check to find out.)
  std::vector<double> kept_a, kept_dz;
};

struct Binding {
  Device* device = nullptr;
  Timing* timing = nullptr;
  std::string last_error;
  std::vector<DeviceLayer> layers;
  // Narrow operands widened for the Device when the host keeps no copy.
  std::vector<double> widened_a, widened_dz;
  // While set (a checkpoint), each layer's download as the enclave received
  // it: the weights it checked are the ones the host stores.
  std::vector<std::vector<double>>* downloads = nullptr;
};

std::shared_mutex registry_mutex;
std::unordered_map<uint64_t, Binding>& registry() {
  static std::unordered_map<uint64_t, Binding> bindings;
  return bindings;
}

// Work receives the device and the binding; it may throw to report a failure.
template <typename Work>
int with_device(uint64_t session, Work&& work) {
  Binding* binding = nullptr;
  {
    std::shared_lock lock(registry_mutex);
    auto it = registry().find(session);
    if (it == registry().end()) return VEIL_ERR_NO_SESSION;
    binding = &it->second;
  }
  // A session is driven by one thread at a time, so its binding is ours here.
  auto start = std::chrono::steady_clock::now();
  int status = VEIL_OK;
  try {
    work(*binding->device, *binding);
  } catch (const std::exception& e) {
    binding->last_error = e.what();
    status = VEIL_ERR_DEVICE;
  } catch (...) {
    binding->last_error = "unknown exception in the device";
    status = VEIL_ERR_DEVICE;
  }
  binding->timing->device_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return status;
}

// Buffers are sized against the shapes each layer was uploaded with, so no
// device ever reads or writes past a buffer, whatever the counts say.
DeviceLayer& layer_of(Binding& b, uint32_t layer) {
  if (layer >= b.layers.size() || b.layers[layer].rows == 0)
    throw std::invalid_argument("layer " + std::to_string(layer) + " has no weights on the device");
  return b.layers[layer];
}

void expect_count(size_t got, size_t expected, const char* what) {
  if (got != expected)
    throw std::invalid_argument(std::string(what) + " holds " + std::to_string(got) +
                                " values, expected " + std::to_string(expected));
}

// An operand as the Device takes it, float64: as sent, or a narrow one
// (float32 integers below 2^23, exact either way) widened into `scratch`.
template <typename T>
const double* as_float64(const T* x, size_t count, std::vector<double>& scratch) {
  if constexpr (std::is_same_v<T, double>) {
    return x;
  } else {
    scratch.assign(x, x + count);
    return scratch.data();
  }
}

// A product operand: kept (widened) for the layer's update when the enclave
// asks; otherwise any older kept operand is dropped, so that an update can
// only reuse what the enclave asked the host to keep.
template <typename T>
const double* device_operand(const T* x, size_t count, int keep, std::vector<double>& kept,
                             std::vector<double>& scratch) {
  if (keep) {
    kept.assign(x, x + count);
    return kept.data();
  }
  kept.clear();
  return as_float64(x, count, scratch);
}

// An update operand: the one the enclave sent (count > 0) or, with a count of
// zero, the one the host was asked to keep by the layer's forward or backward.
template <typename T>
const double* update_operand(const T* sent, size_t count, const std::vector<double>& kept,
                             std::vector<double>& scratch, size_t expected, const char* what,
                             const char* kept_from) {
  if (expected == 0) return nullptr;  // a worker of a run with no rows in this step
  if (count == 0) {
    if (kept.size() != expected)
      throw std::invalid_argument(std::string("update asked to reuse the ") + kept_from +
                                  " operand, but the host kept " + std::to_string(kept.size()) +
                                  " values of it, expected " + std::to_string(expected));
    return kept.data();
  }
  expect_count(count, expected, what);
  return as_float64(sent, count, scratch);
}

// Bytes the generated bridge copied across the enclave boundary for one call.
void count_bytes(Binding& b, size_t bytes_out, size_t bytes_in) {
  b.timing->bytes_to_device += bytes_out;
  b.timing->bytes_from_device += bytes_in;
}

// The product ocalls, X * M (forward) or X * M^T (backward), for float64
// operands and for narrow (float32) ones.
template <typename T>
int device_product(bool forward, uint64_t session, uint32_t layer, const T* x, size_t x_count,
                   size_t rows, double* out, size_t out_count, int keep) {
  return with_device(session, [&](Device& d, Binding& b) {
    count_bytes(b, x_count * sizeof(T), out_count * sizeof(double));
    DeviceLayer& s = layer_of(b, layer);
    expect_count(x_count, rows * (forward ? s.rows : s.cols),
                 forward ? "forward input" : "backward input");
    expect_count(out_count, rows * (forward ? s.cols : s.rows),
                 forward ? "forward output" : "backward output");
    const double* operand = device_operand(x, x_count, keep, forward ? s.kept_a : s.kept_dz,
                                           forward ? b.widened_a : b.widened_dz);
    if (forward)
      d.forward(layer, operand, rows, out);
    else
      d.backward(layer, operand, rows, out);
  });
}

template <typename T>
int device_update(uint64_t session, uint32_t layer, const T* a, size_t a_count, const T* dz,
                  size_t dz_count, size_t rows) {
  return with_device(session, [&](Device& d, Binding& b) {
    count_bytes(b, (a_count + dz_count) * sizeof(T), 0);
    const DeviceLayer& s = layer_of(b, layer);
    const double* a_used = update_operand(a, a_count, s.kept_a, b.widened_a, rows * s.rows,
                                          "update activations", "forward");
    const double* dz_used = update_operand(dz, dz_count, s.kept_dz, b.widened_dz, rows * s.cols,
                                           "update gradients", "backward");
    d.update(layer, a_used, dz_used, rows);
  });
}

}  // namespace

void bind_device(uint64_t session, Device* device, Timing* timing) {
  std::unique_lock lock(registry_mutex);
  registry()[session] = Binding{device, timing, {}};
}

void unbind_device(uint64_t session) {
  std::unique_lock lock(registry_mutex);
  registry().erase(session);
}

void capture_downloads(uint64_t session, std::vector<std::vector<double>>* into) {
  std::unique_lock lock(registry_mutex);
  auto it = registry().find(session);
  if (it != registry().end()) it->second.downloads = into;
}

std::string take_device_error(uint64_t session) {
  std::unique_lock lock(registry_mutex);
  auto it = registry().find(session);
  if (it == registry().end()) return {};
  std::string message;
  message.swap(it->second.last_error);
  return message;
}

}  // namespace veil::detail

using veil::detail::Binding;
using veil::detail::count_bytes;
using veil::detail::DeviceLayer;
using veil::detail::expect_count;
using veil::detail::layer_of;
using veil::detail::with_device;

namespace {
std::atomic<veil::LogHandler> log_handler{nullptr};
}  // namespace

void veil::set_log_handler(veil::LogHandler handler) noexcept { log_handler.store(handler); }

extern "C" {

void ocall_log(int level, const char* message) {
  static const char* const kLevels[] = {"debug", "info", "warning", "error"};
  if (veil::LogHandler handler = log_handler.load()) {
    handler(level, message);
    return;
  }
  if (level < 2) return;  // the enclave logs progress at debug/info; keep the console quiet
  std::fprintf(stderr, "[veil enclave %s] %s\n", kLevels[level > 3 ? 3 : level], message);
}

int ocall_device_upload(uint64_t session, uint32_t layer, const double* weights, size_t rows,
                        size_t cols, size_t count) {
  return with_device(session, [&](veil::Device& d, Binding& b) {
    count_bytes(b, count * sizeof(double), 0);
    if (rows == 0 || cols == 0 || count != rows * cols)
      throw std::invalid_argument("upload of a " + std::to_string(rows) + "x" +
                                  std::to_string(cols) + " matrix with " + std::to_string(count) +
                                  " values");
    if (b.layers.size() <= layer) b.layers.resize(layer + 1);
    d.upload(layer, weights, rows, cols);
    b.layers[layer] = DeviceLayer{rows, cols, {}, {}};
  });
}

int ocall_device_forward(uint64_t session, uint32_t layer, const double* a, size_t a_count,
                         size_t rows, double* z, size_t z_count, int keep) {
  return veil::detail::device_product(true, session, layer, a, a_count, rows, z, z_count, keep);
}

int ocall_device_forward_narrow(uint64_t session, uint32_t layer, const float* a, size_t a_count,
                                size_t rows, double* z, size_t z_count, int keep) {
  return veil::detail::device_product(true, session, layer, a, a_count, rows, z, z_count, keep);
}

int ocall_device_backward(uint64_t session, uint32_t layer, const double* dz, size_t dz_count,
                          size_t rows, double* da, size_t da_count, int keep) {
  return veil::detail::device_product(false, session, layer, dz, dz_count, rows, da, da_count,
                                      keep);
}

int ocall_device_backward_narrow(uint64_t session, uint32_t layer, const float* dz,
                                 size_t dz_count, size_t rows, double* da, size_t da_count,
                                 int keep) {
  return veil::detail::device_product(false, session, layer, dz, dz_count, rows, da, da_count,
                                      keep);
}

int ocall_device_update(uint64_t session, uint32_t layer, const double* a, size_t a_count,
                        const double* dz, size_t dz_count, size_t rows) {
  return veil::detail::device_update(session, layer, a, a_count, dz, dz_count, rows);
}

int ocall_device_update_narrow(uint64_t session, uint32_t layer, const float* a, size_t a_count,
                               const float* dz, size_t dz_count, size_t rows) {
  return veil::detail::device_update(session, layer, a, a_count, dz, dz_count, rows);
}

int ocall_exchange(uint64_t session, const uint8_t* message, size_t size, uint8_t* all,
                   size_t capacity) {
  return with_device(session, [&](veil::Device& d, Binding&) {
    d.exchange(message, size, all, capacity);
  });
}

int ocall_device_scale(uint64_t session, uint32_t layer) {
  return with_device(session, [&](veil::Device& d, Binding& b) {
    layer_of(b, layer);
    d.scale(layer);
  });
}

int ocall_device_max_abs(uint64_t session, uint32_t layer, double* max_abs) {
  return with_device(session, [&](veil::Device& d, Binding& b) {
    layer_of(b, layer);
    *max_abs = d.max_abs(layer);
  });
}

int ocall_device_download(uint64_t session, uint32_t layer, double* weights, size_t count) {
  return with_device(session, [&](veil::Device& d, Binding& b) {
    count_bytes(b, 0, count * sizeof(double));
    const DeviceLayer& s = layer_of(b, layer);
    expect_count(count, s.rows * s.cols, "download buffer");
    d.download(layer, weights);
    if (b.downloads) {
      if (b.downloads->size() <= layer) b.downloads->resize(layer + 1);
      (*b.downloads)[layer].assign(weights, weights + count);
    }
  });
}

}  // extern "C"
