#pragma once
/**
 * @file device.h
 * @brief The untrusted device: holds weights and computes exact integer products.
 *
 * The enclave asks for device work through ocalls; the host routes each one to
 * the Device attached to the session. Every value is an integer stored in a
 * float64 (docs/design.md §3); the enclave checks every result, so a Device may be
 * wrong or malicious without breaking integrity. Matrices are row-major.
 *
 * A layer's weight matrix M has rows = inputs + 1 (the last row is the bias)
 * and cols = outputs.
 */
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace veil {

/** Operations the verification protocols need from an untrusted device. */
class Device {
 public:
  virtual ~Device() = default;

  /** A short name for logs and benchmarks ("cpu", "cuda", ...). */
  virtual std::string name() const = 0;

  /** Store layer's initial weights (rows x cols), replacing any previous ones. */
  virtual void upload(uint32_t layer, const double* weights, size_t rows, size_t cols) = 0;

  /** z (batch x cols) = a (batch x rows) * M. */
  virtual void forward(uint32_t layer, const double* a, size_t batch, double* z) = 0;

  /** da (batch x rows) = dz (batch x cols) * M^T. */
  virtual void backward(uint32_t layer, const double* dz, size_t batch, double* da) = 0;

  /** M <- M - a^T * dz, with a (batch x rows) and dz (batch x cols). */
  virtual void update(uint32_t layer, const double* a, const double* dz, size_t batch) = 0;

  /** M <- 2 M (learning-rate halving keeps the SGD step exact). */
  virtual void scale(uint32_t layer) = 0;

  /** max |M| over the layer's weights. */
  virtual double max_abs(uint32_t layer) = 0;

  /** Copy the layer's weights (rows x cols) into weights. */
  virtual void download(uint32_t layer, double* weights) = 0;

  /**
   * Only for a worker of a data-parallel run (Trainer::join): send message
   * (size bytes, sealed by the enclave) to every worker of the run and write
   * every worker's message, in worker order, into all (capacity = workers *
   * size). A device of no run keeps this default, which throws.
   */
  virtual void exchange(const uint8_t* /*message*/, size_t /*size*/, uint8_t* /*all*/,
                        size_t /*capacity*/) {
    throw std::logic_error("device " + name() + " belongs to no data-parallel run (exchange)");
  }
};

}  // namespace veil
