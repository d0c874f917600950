#pragma once
// Inference on a frozen, quantized model (docs/design.md §4.1), in one of two modes:
//
// - verify: the device sees the quantized activations X_q and returns
//   Y = X_q W_q; the enclave checks Y s = X_q (W_q s) mod q.
// - private: the device sees only X~ = X_q + R mod p_b (R uniform, regenerated
//   from the enclave's CSPRNG by (layer, slot)), as two 24-bit limbs; each limb
//   product is checked like any other, then Y = centre(Y~ - U mod p_b) with
//   U = R W_q mod p_b precomputed offline and sealed (AES-256-GCM) for the host
//   to keep.
//
// After Y is known both modes run the same code (the fused pass: rescale,
// activation, quantize), so their outputs are bit-identical.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "head.h"
#include "math/activation.h"
#include "math/fixed_point.h"
#include "math/prg.h"
#include "math/status.h"
#include "platform.h"
#include "session.h"
#include "veil_t.h"

namespace veil::enclave {


/**
 * The sealed form of U for one (layer, slot), as the host keeps it:
 * header (magic "vUm" and the format version '1', layer u32, slot u64, rows u32,
 * cols u32; little-endian),
 * the AES-256-GCM ciphertext of U (rows x cols, 6 bytes per element,
 * little-endian) and the 16-byte tag. The associated data binds the session
 * id, the whole header and the blob's length; the IV is (layer, slot).
 */
constexpr size_t kSealedHeaderBytes = 24;
constexpr size_t kSealedTagBytes = 16;
constexpr size_t kSealedElementBytes = 6;  // U < p_b < 2^48

/** The protocol state of one inference session. */
class Inference final : public Protocol {
 public:
  static constexpr Kind kKind = Kind::inference;
  Kind kind() const override { return kKind; }

 public:
  /** Validate the configuration and draw the session's keys and check vectors. */
  static int create(Session& session, const veil_inference_config_t& config,
                    const veil_layer_spec_t* layers, size_t layer_count,
                    std::unique_ptr<Inference>* out);
  ~Inference();
  Inference(const Inference&) = delete;
  Inference& operator=(const Inference&) = delete;

  /**
   * Quantize the next block of whole rows of one layer's real weights
   * ((inputs + 1) x outputs, bias last). With the last row: check the
   * exactness budget, upload W_q to the device and compute W_q s. Layers load
   * in order, once each, their rows in order.
   */
  int load_layer(Session& session, uint32_t layer, const double* weights, size_t count);

  /** Seal U = R W_q mod p_b of every layer for the next slot, batches of up to rows rows. */
  int precompute(Session& session, uint32_t rows, uint8_t* sealed, size_t capacity);
  /** Bytes precompute writes for a slot of `rows` rows (the host asks, never computes). */
  int slot_size(Session& session, uint32_t rows, uint64_t* size);

  /** Run one batch; private mode consumes the slot whose sealed U the host passes. */
  int predict(Session& session, const double* x, size_t x_count, size_t batch,
              const uint8_t* sealed, size_t sealed_size, double* output, size_t out_count);

  /**
   * Private fine-tuning: the frozen layers as in predict (private mode consumes
   * the slot), then one SGD step of the in-enclave head (docs/design.md §4.5).
   */
  int train_step(Session& session, const double* x, size_t x_count, const int32_t* labels,
                 size_t batch, const uint8_t* sealed, size_t sealed_size,
                 veil_step_result_t* result);
  /** A head layer's weights in real units, (inputs + 1) x outputs. */
  int export_head(Session& session, uint32_t layer, double* out, size_t count);

  /** Counters and slot positions. */
  void status(veil_inference_status_t* out) const;

  struct Layer;

 private:
  Inference() = default;

  bool is_private() const { return config_.mode == VEIL_INFERENCE_MODE_PRIVATE; }
  bool ready() const;
  size_t layer_count() const;
  size_t classes() const;
  int load_rows(Session& session, uint32_t layer, const double* weights, size_t count,
                uint32_t* rows);
  int run_frozen(Session& session, const double* x, size_t x_count, size_t batch,
                 const uint8_t* sealed, size_t sealed_size, uint64_t* saturated);
  math::FixedFormat act_format() const { return {config_.frac_act, config_.act_clip}; }
  int require_ready(Session& session, const char* call) const;
  int check_budget(Session& session, uint32_t l, double col_l1) const;
  int check_input(Session& session, const double* x, size_t x_count, size_t batch,
                  size_t out_count);
  int open_slot(Session& session, const uint8_t* sealed, size_t size, size_t batch,
                uint64_t* slot);
  int tampered(Session& session, uint32_t l, const char* what);
  int device_product(Session& session, uint32_t l, const double* x, size_t batch, double* y);
  int checked_private(Session& session, uint32_t l, size_t batch, uint64_t slot);
  int checked_verify(Session& session, uint32_t l, size_t batch);
  int finish_layer(Session& session, uint32_t l, size_t batch, const uint64_t* expected,
                   uint64_t* saturated);
  int verification_failure(Session& session, uint32_t l, const char* what);
  math::Status correction(const Layer& l, size_t rows, uint64_t* u);
  // Rows of layer l's product for a batch: one per example and output position
  // (docs/design.md §4.4).
  size_t rows_of(uint32_t l, size_t batch) const;
  bool seal(uint32_t l, uint64_t slot, uint32_t rows, const std::vector<uint64_t>& u,
            uint8_t* out);

  veil_inference_config_t config_{};
  uint64_t session_id_ = 0;  // bound into every sealed blob's associated data
  std::vector<Layer> layers_;  // the frozen layers, on the device
  Head head_;                  // the trainable layers after them, in the enclave
  uint64_t head_steps_ = 0;
  bool in_train_step_ = false;  // for error messages: a train step, not a prediction
  size_t loaded_ = 0;       // layers complete
  uint32_t rows_loaded_ = 0;  // rows of layer loaded_ received so far
  math::Prg masks_;           // R = PRG(mask key, stream (layer, slot)); never stored
  uint8_t seal_key_[32] = {};  // AES-256-GCM key; never leaves the enclave
  uint64_t next_slot_ = 0;     // the slot the next private batch must bring
  uint64_t sealed_until_ = 0;  // slots sealed so far
  uint64_t batches_ = 0;       // predict calls that reached the device
  uint64_t current_slot_ = 0;  // for error messages
  // Per-call work buffers, grown on demand.
  std::vector<std::vector<double>> acts_;   // X_q of layer l with its bias column
  std::vector<std::vector<uint64_t>> u_;    // opened U of each layer (secret)
  std::vector<uint64_t> r_;                 // R of the current layer (secret)
  std::vector<std::vector<double>> gemm_work_;  // per row block: R's limbs, products (secret)
  std::vector<uint8_t> plain_;              // packed U around sealing (secret)
  std::vector<double> lo_, hi_, y_lo_, y_hi_, y_, z_;
  std::vector<double> real_, tensor_;       // a convolution's activations and pooled output
  std::vector<uint8_t> pool_arg_;
  HostBuffer sent_, result_;  // host memory the operands go out in, the products land in
  std::vector<uint64_t> expected_;
};

}  // namespace veil::enclave
