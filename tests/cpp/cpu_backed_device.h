#pragma once
// Test devices: honest products on the CPU device, with whichever operations a
// test overrides to fail, stall, record or cheat (calling these to stay honest).
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "veil/cpu_device.h"
#include "veil/device.h"

namespace veil_test {

class CpuBackedDevice : public veil::Device {
 public:
  explicit CpuBackedDevice(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void upload(uint32_t l, const double* w, size_t r, size_t c) override { cpu_.upload(l, w, r, c); }
  void forward(uint32_t l, const double* a, size_t b, double* z) override { cpu_.forward(l, a, b, z); }
  void backward(uint32_t l, const double* dz, size_t b, double* da) override {
    cpu_.backward(l, dz, b, da);
  }
  void update(uint32_t l, const double* a, const double* dz, size_t b) override {
    cpu_.update(l, a, dz, b);
  }
  void scale(uint32_t l) override { cpu_.scale(l); }
  double max_abs(uint32_t l) override { return cpu_.max_abs(l); }
  void download(uint32_t l, double* w) override { cpu_.download(l, w); }

 private:
  std::string name_;
  veil::CpuDevice cpu_{1};
};

}  // namespace veil_test
