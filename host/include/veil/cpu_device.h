#pragma once
/**
 * @file cpu_device.h
 * @brief A Device on the host CPU over BLAS (OpenBLAS from the package registry).
 */
#include <memory>
#include <vector>

#include "veil/device.h"

namespace veil {

/** Exact float64 products with cblas_dgemm; weights live in host memory. */
class CpuDevice final : public Device {
 public:
  /** @param threads BLAS threads to use; 0 keeps the library's default. */
  explicit CpuDevice(int threads = 0);
  ~CpuDevice() override;

  std::string name() const override { return "cpu"; }
  void upload(uint32_t layer, const double* weights, size_t rows, size_t cols) override;
  void forward(uint32_t layer, const double* a, size_t batch, double* z) override;
  void backward(uint32_t layer, const double* dz, size_t batch, double* da) override;
  void update(uint32_t layer, const double* a, const double* dz, size_t batch) override;
  void scale(uint32_t layer) override;
  double max_abs(uint32_t layer) override;
  void download(uint32_t layer, double* weights) override;

 private:
  struct Layer {
    size_t rows = 0;
    size_t cols = 0;
    std::vector<double> weights;
  };
  Layer& layer_at(uint32_t layer);
  std::vector<Layer> layers_;
};

}  // namespace veil
