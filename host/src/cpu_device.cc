#include "veil/cpu_device.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace veil {

CpuDevice::CpuDevice(int threads) {
  if (threads > 0) openblas_set_num_threads(threads);
}

CpuDevice::~CpuDevice() = default;

CpuDevice::Layer& CpuDevice::layer_at(uint32_t layer) {
  if (layer >= layers_.size() || layers_[layer].rows == 0)
    throw std::invalid_argument("cpu device: layer " + std::to_string(layer) + " has no weights");
  return layers_[layer];
}

void CpuDevice::upload(uint32_t layer, const double* weights, size_t rows, size_t cols) {
  if (layers_.size() <= layer) layers_.resize(layer + 1);
  Layer& l = layers_[layer];
  l.rows = rows;
  l.cols = cols;
  l.weights.assign(weights, weights + rows * cols);
}

// Every product below is exact: the enclave only asks for products whose partial
// sums stay below 2^53, and float64 represents every such integer.
void CpuDevice::forward(uint32_t layer, const double* a, size_t batch, double* z) {
  Layer& l = layer_at(layer);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(batch),
              static_cast<int>(l.cols), static_cast<int>(l.rows), 1.0, a, static_cast<int>(l.rows),
              l.weights.data(), static_cast<int>(l.cols), 0.0, z, static_cast<int>(l.cols));
}

void CpuDevice::backward(uint32_t layer, const double* dz, size_t batch, double* da) {
  Layer& l = layer_at(layer);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(batch),
              static_cast<int>(l.rows), static_cast<int>(l.cols), 1.0, dz, static_cast<int>(l.cols),
              l.weights.data(), static_cast<int>(l.cols), 0.0, da, static_cast<int>(l.rows));
}

void CpuDevice::update(uint32_t layer, const double* a, const double* dz, size_t batch) {
  Layer& l = layer_at(layer);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(l.rows),
              static_cast<int>(l.cols), static_cast<int>(batch), -1.0, a, static_cast<int>(l.rows),
              dz, static_cast<int>(l.cols), 1.0, l.weights.data(), static_cast<int>(l.cols));
}

void CpuDevice::scale(uint32_t layer) {
  Layer& l = layer_at(layer);
  cblas_dscal(static_cast<int>(l.weights.size()), 2.0, l.weights.data(), 1);
}

double CpuDevice::max_abs(uint32_t layer) {
  Layer& l = layer_at(layer);
  double m = 0;
  for (double w : l.weights) m = std::max(m, std::fabs(w));
  return m;
}

void CpuDevice::download(uint32_t layer, double* weights) {
  Layer& l = layer_at(layer);
  std::copy(l.weights.begin(), l.weights.end(), weights);
}

}  // namespace veil
