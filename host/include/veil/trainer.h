#pragma once
/**
 * @file trainer.h
 * @brief Verify-mode training (docs/design.md §4.2): the device holds the weights, the
 * enclave checks every product with secret fingerprints.
 */
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "veil/codes.h"
#include "veil/session.h"

namespace veil {

class Device;

// Activation, Loss, InferenceMode and limits:: come from veil/codes.h, written from
// the EDL. Cross-entropy fuses a softmax over the last layer's outputs; MSE is on
// one-hot labels.

/**
 * One layer: inputs -> outputs, then activation. A dense layer leaves the
 * geometry 0; after a convolution it takes the flattened (channels, height,
 * width) output. A convolution (kind conv2d, docs/design.md §4.4) over a
 * channels x height x width input has inputs = kernel^2 channels and outputs =
 * output channels, and may pool after its activation; conv2d() fills it in.
 */
struct LayerSpec {
  uint32_t inputs = 0;
  uint32_t outputs = 0;
  Activation activation = Activation::identity;
  LayerKind kind = LayerKind::dense;
  uint32_t channels = 0, height = 0, width = 0;  ///< conv: the input tensor
  uint32_t kernel = 0, stride = 0, padding = 0;  ///< conv: square window
  Pool pool = Pool::none;                        ///< after the activation
  uint32_t pool_size = 0;                        ///< pooling window and stride

  /** Values per example this layer takes as a model's first layer: C H W for a conv. */
  size_t input_features() const {
    return kind == LayerKind::conv2d ? size_t{channels} * height * width : inputs;
  }

  /** A convolution of a channels x height x width input, PyTorch's Conv2d shapes. */
  static LayerSpec conv2d(uint32_t in_channels, uint32_t out_channels, uint32_t height,
                          uint32_t width, uint32_t kernel, uint32_t stride = 1,
                          uint32_t padding = 0, Activation activation = Activation::identity,
                          Pool pool = Pool::none, uint32_t pool_size = 0) {
    LayerSpec l;
    l.inputs = kernel * kernel * in_channels;
    l.outputs = out_channels;
    l.activation = activation;
    l.kind = LayerKind::conv2d;
    l.channels = in_channels, l.height = height, l.width = width;
    l.kernel = kernel, l.stride = stride, l.padding = padding;
    l.pool = pool, l.pool_size = pool_size;
    return l;
  }
};

/** Verify-mode training configuration. The defaults train digits to ~97%. */
struct TrainConfig {
  std::vector<LayerSpec> layers;  ///< at least one; widths must chain
  Loss loss = Loss::cross_entropy;
  int32_t frac_act = 8;           ///< f_a: fractional bits of activations
  int32_t frac_grad = 12;         ///< f_g: fractional bits of gradients
  int32_t lr_exp = 2;             ///< k: learning rate 2^-k
  uint32_t max_batch = 256;       ///< largest batch a step may carry
  uint64_t seed = 0;              ///< weight initialisation seed
  double act_clip = 64.0;         ///< |activation| and |input| clip in real units
  double grad_clip = 8.0;         ///< |gradient| clip in real units
  double weight_max = 2.0;        ///< |weight| bound the exactness budget assumes
};

/** What one training step reports. */
struct StepResult {
  double loss = 0;              ///< mean loss over the batch
  uint32_t correct = 0;         ///< argmax hits
  uint32_t saturated = 0;       ///< values clipped while quantizing
  uint64_t step = 0;            ///< steps completed so far
  uint64_t checks_passed = 0;   ///< Freivalds checks passed so far
};

/** Wall-clock split of the work done so far, and the bytes the device work moved. */
struct Timing {
  double total_seconds = 0;   ///< inside ecalls
  double device_seconds = 0;  ///< inside device ocalls (products and transfers)
  uint64_t bytes_to_device = 0;    ///< operands and weights the enclave sent out
  uint64_t bytes_from_device = 0;  ///< results and weights that came back in
  /** Time the enclave itself spent: total minus device. */
  double enclave_seconds() const { return total_seconds - device_seconds; }
};

/**
 * A verify-mode training session. The constructor sends the configuration to
 * the enclave, which draws the initial weights and secrets and uploads the
 * weights to device. The device must outlive the trainer.
 */
/** A sealed training state and the device's raw weights it was checked against. */
struct Checkpoint {
  std::vector<uint8_t> sealed;               // the enclave's state, AES-256-GCM
  std::vector<std::vector<double>> weights;  // per layer, (inputs+1) x outputs, integers
};

class Trainer : public Session {
 public:
  /** @throws ConfigError for a refused configuration, InputError for bad shapes */
  Trainer(Enclave& enclave, Device& device, const TrainConfig& config);
  ~Trainer() override;

  /**
   * One SGD step. x is batch x inputs (row-major), labels holds batch class ids.
   * @throws InputError (session usable), VerificationError (session aborted)
   */
  StepResult step(const double* x, const int32_t* labels, size_t batch);

  /** Verify-mode inference: out is batch x classes probabilities. */
  void predict(const double* x, size_t batch, double* out);

  /**
   * Make this trainer worker `worker` of a data-parallel run of `workers`
   * (docs/design.md §4.6), before its first step. Every worker is given the same
   * 32-byte run key; the check vectors derive from it, and the device's
   * Device::exchange carries the workers' sealed fingerprint deltas. Each step
   * then takes this worker's shard of the global batch (batch 0 is allowed), and
   * Device::update must apply the sum of every worker's a^T dz.
   * @throws InputError (a bad key or worker, session usable), DeviceError (the
   * exchange failed, session usable)
   */
  void join(const std::vector<uint8_t>& run_key, uint32_t worker, uint32_t workers);

  /** Halve the learning rate (exact: M <- 2M on the device). */
  void halve_lr();

  /** A layer's weights, (inputs+1) x outputs with the bias last, checked first. */
  std::vector<double> export_weights(uint32_t layer);

  /**
   * Seal the enclave's training state (AES-256-GCM) after the enclave has
   * checked every layer's weights on the device against its fingerprints.
   * key: 32 bytes, or empty for the platform's sealing key (Open Enclave
   * builds; the virtual backend has none). Store both parts together; restore()
   * takes them back.
   * @throws VerificationError when the device's weights fail the check
   *   (nothing is returned, so a previous checkpoint stays the last good one).
   */
  Checkpoint checkpoint(const std::vector<uint8_t>& key);

  /**
   * Resume from a checkpoint: device receives the stored raw weights, then the
   * enclave opens the sealed state and checks every layer's weights against
   * its fingerprints. config must be the one the checkpoint was made with.
   * @throws InputError for a tampered, foreign or mismatched checkpoint,
   *         VerificationError when the stored weights do not match the state
   */
  static std::unique_ptr<Trainer> restore(Enclave& enclave, Device& device,
                                          const TrainConfig& config,
                                          const std::vector<uint8_t>& checkpoint,
                                          const std::vector<std::vector<double>>& device_weights,
                                          const std::vector<uint8_t>& key);

  /** The configuration the trainer was built with. */
  const TrainConfig& config() const noexcept { return config_; }
  /** The device doing the products. */
  Device& device() const noexcept { return device_; }
  /** Host-measured time split since construction or reset_timing(). */
  Timing timing() const;
  /** Zero the time split. */
  void reset_timing();

 private:
  struct Restoring {};
  Trainer(Enclave& enclave, Device& device, const TrainConfig& config, Restoring);
  Device& device_;
  TrainConfig config_;
  Timing timing_;  // the ocall router adds device time here while ecalls run
};

}  // namespace veil
