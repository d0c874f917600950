#pragma once
// A veil::Device whose operations are Python methods. Cython fills the callback
// table; each callback takes the GIL, calls the Python object and reports
// failure by returning non-zero after saving the exception on the object.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "veil/device.h"
#include "veil/error.h"

namespace veil::python {

struct DeviceCallbacks {
  int (*upload)(void* self, uint32_t layer, const double* w, size_t rows, size_t cols);
  int (*forward)(void* self, uint32_t layer, const double* a, size_t batch, double* z);
  int (*backward)(void* self, uint32_t layer, const double* dz, size_t batch, double* da);
  int (*update)(void* self, uint32_t layer, const double* a, const double* dz, size_t batch);
  int (*scale)(void* self, uint32_t layer);
  int (*max_abs)(void* self, uint32_t layer, double* out);
  int (*download)(void* self, uint32_t layer, double* w);
  int (*exchange)(void* self, const uint8_t* message, size_t size, uint8_t* all, size_t capacity);
  // Writes the message of the exception the last failing callback saved.
  void (*describe)(void* self, char* out, size_t capacity);
};

class PyDevice final : public Device {
 public:
  PyDevice(void* self, const DeviceCallbacks& callbacks, std::string name)
      : self_(self), cb_(callbacks), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void upload(uint32_t layer, const double* w, size_t rows, size_t cols) override {
    check(cb_.upload(self_, layer, w, rows, cols), "upload");
  }
  void forward(uint32_t layer, const double* a, size_t batch, double* z) override {
    check(cb_.forward(self_, layer, a, batch, z), "forward");
  }
  void backward(uint32_t layer, const double* dz, size_t batch, double* da) override {
    check(cb_.backward(self_, layer, dz, batch, da), "backward");
  }
  void update(uint32_t layer, const double* a, const double* dz, size_t batch) override {
    check(cb_.update(self_, layer, a, dz, batch), "update");
  }
  void scale(uint32_t layer) override { check(cb_.scale(self_, layer), "scale"); }
  double max_abs(uint32_t layer) override {
    double out = 0;
    check(cb_.max_abs(self_, layer, &out), "max_abs");
    return out;
  }
  void download(uint32_t layer, double* w) override { check(cb_.download(self_, layer, w), "download"); }
  void exchange(const uint8_t* message, size_t size, uint8_t* all, size_t capacity) override {
    check(cb_.exchange(self_, message, size, all, capacity), "exchange");
  }

 private:
  void check(int rc, const char* op) {
    if (rc == 0) return;
    char message[512] = {0};
    cb_.describe(self_, message, sizeof message);
    throw std::runtime_error(name_ + "." + op + " raised " + message);
  }
  void* self_;
  DeviceCallbacks cb_;
  std::string name_;
};

}  // namespace veil::python
