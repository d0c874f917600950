#pragma once
/**
 * @file inference.h
 * @brief Inference on a frozen, quantized model (docs/design.md §4.1): private (the
 * device sees only one-time-padded activations) or verify (the device sees the
 * quantized activations); every device product is checked either way.
 */
#include <cstddef>
#include <cstdint>
#include <vector>

#include "veil/session.h"
#include "veil/trainer.h"

namespace veil {

class Device;

// InferenceMode (veil/codes.h): verify, the device sees X_q in the clear; private_,
// it sees only X~ = X_q + R mod p_b, uniform. Every product is checked in both.

/** Inference configuration. */
struct InferenceConfig {
  std::vector<LayerSpec> layers;  ///< at least one; widths must chain
  /** Output: softmax over the last layer (cross_entropy) or its activation (mse). */
  Loss loss = Loss::cross_entropy;
  InferenceMode mode = InferenceMode::private_;
  int32_t frac_act = 8;       ///< f_a: fractional bits of activations and inputs
  int32_t frac_weights = 10;  ///< f_w: W_q = round(W 2^f_w), bias row included
  double act_clip = 64.0;     ///< |activation| and |input| clip in real units
  /**
   * Private fine-tuning (docs/design.md §4.5): the last head_layers layers train
   * inside the enclave in float64 (SGD at head_lr); the first layer stays frozen.
   */
  uint32_t head_layers = 0;
  double head_lr = 0.1;
};

/** What one fine-tuning step of the head reports. */
struct HeadStep {
  double loss = 0;          ///< mean loss over the batch
  uint32_t correct = 0;     ///< argmax hits in the batch
  uint32_t saturated = 0;   ///< values clipped while quantizing the frozen layers' inputs
  uint64_t step = 0;        ///< head steps completed
};

/** Where an inference session stands, as the enclave reports it. */
struct InferenceStatus {
  uint64_t batches = 0;        ///< predict calls that reached the device
  uint64_t next_slot = 0;      ///< the slot the next private batch must bring
  uint64_t slots_sealed = 0;   ///< slots precomputed so far
  uint64_t checks_passed = 0;  ///< Freivalds checks passed
  uint64_t saturated = 0;      ///< values clipped while quantizing
  bool aborted = false;        ///< true after an integrity failure
};

/**
 * An inference session. The constructor sends the model to the enclave, which
 * quantizes it, checks the exactness budget and uploads W_q to device. In
 * private mode, precompute() seals the unblinding factors of one future batch
 * (a slot) for the host to keep, and predict() consumes the slots in order.
 * The device must outlive the session.
 */
class Inference : public Session {
 public:
  /**
   * @param weights one pointer per layer to its real weights, (inputs + 1) x
   *        outputs row-major with the bias in the last row (what
   *        Trainer::export_weights returns); read during the constructor only.
   * @throws ConfigError (a layer outside the exactness budget names the knob),
   *         InputError (bad shapes or non-finite weights)
   */
  Inference(Enclave& enclave, Device& device, const InferenceConfig& config,
            const std::vector<const double*>& weights);
  ~Inference() override;

  /** Bytes of one slot's sealed blobs for batches of up to rows rows, as the enclave says. */
  size_t sealed_slot_size(uint32_t rows);

  /**
   * Private mode, offline: seal U = R W_q mod p_b of every layer for the next
   * slot. @return the sealed blobs the host keeps and passes back to predict().
   */
  std::vector<uint8_t> precompute(uint32_t rows);

  /**
   * One batch: out is batch x classes (softmax or the last activation). Private
   * mode needs the next slot's blobs (sealed, sealed_size); verify mode none.
   * @throws InputError (session usable), ProtocolError (a reused, out-of-order
   *         or missing slot; session usable), VerificationError (a device product
   *         failed its check, or a sealed blob was altered; session aborted)
   */
  void predict(const double* x, size_t batch, double* out, const uint8_t* sealed = nullptr,
               size_t sealed_size = 0);

  /**
   * Private fine-tuning: one SGD step of the head on a batch (labels: batch class
   * ids). The frozen layers run as in predict(), consuming the next slot in
   * private mode. @throws as predict(); ConfigError if the head's loss is not finite.
   */
  HeadStep train_step(const double* x, const int32_t* labels, size_t batch,
                      const uint8_t* sealed = nullptr, size_t sealed_size = 0);

  /** A head layer's trained weights, (inputs + 1) x outputs, bias last, real units. */
  std::vector<double> export_head(uint32_t layer);

  /** Counters and slot positions. Works after an abort too. */
  InferenceStatus status() const;

  /** The configuration the session was built with. */
  const InferenceConfig& config() const noexcept { return config_; }
  /** The device doing the products. */
  Device& device() const noexcept { return device_; }
  /** Host-measured time split since construction or reset_timing(). */
  Timing timing() const { return timing_; }
  /** Zero the time split. */
  void reset_timing() { timing_ = Timing{}; }

 private:
  template <typename Call>
  void timed(const char* name, Call&& call);

  Device& device_;
  InferenceConfig config_;
  Timing timing_;  // the ocall router adds device time here while ecalls run
};

}  // namespace veil
