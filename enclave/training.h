#pragma once
// Verify-mode training (docs/design.md §4.2): the device holds the weights M_l as
// exact integers at scale 2^S; the enclave keeps secret vectors s_l, t_l and the
// fingerprints v_l = M_l s_l, w_l = M_l^T t_l (mod q), checks every product the
// device returns, and updates the fingerprints in O(B (n + m)) per step.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "conv.h"
#include "group.h"
#include "math/activation.h"
#include "math/fixed_point.h"
#include "math/fused.h"
#include "math/loss.h"
#include "math/prg.h"
#include "math/status.h"
#include "platform.h"
#include "session.h"
#include "veil_t.h"

namespace veil::enclave {

class Decoder;


/** Check a model description; on failure the session's error names what is wrong. */
int validate_model(Session& session, const veil_train_config_t& config,
                   const veil_layer_spec_t* layers, size_t layer_count);

/**
 * Size `out` to a validated model and copy each layer's widths and activation
 * (the EDL's activation codes are math::Activation's) into it.
 */
template <class Layer>
void shape_layers(const veil_layer_spec_t* specs, size_t count, std::vector<Layer>* out) {
  out->resize(count);
  for (size_t i = 0; i < count; ++i) {
    (*out)[i].n = specs[i].inputs;
    (*out)[i].m = specs[i].outputs;
    (*out)[i].activation = static_cast<math::Activation>(specs[i].activation);
    (*out)[i].shape = conv::shape_of(specs, i);
  }
}

/**
 * Initial real weights of layer li, (n + 1) x m with a zero bias row: He-uniform
 * for ReLU/softplus, Glorot-uniform otherwise, from a PRG keyed by the public
 * seed (so runs are reproducible and every trainer starts alike).
 */
bool initial_weights(const veil_train_config_t& config, uint32_t li, uint32_t n, uint32_t m,
                     math::Activation activation, std::vector<double>* out);

/**
 * What predict returns from the last layer's real z (batch x m): softmax
 * probabilities for a cross-entropy model, the last activation for an MSE model.
 */
void model_outputs(int32_t loss, math::Activation last, const double* z, size_t batch, size_t m,
                   double* out);

/** The protocol state of one verify-mode training session. */
class Training final : public Protocol {
 public:
  static constexpr Kind kKind = Kind::training;
  Kind kind() const override { return kKind; }

 public:
  /**
   * Validate the configuration, check the exactness budget, draw the initial
   * weights and the secrets, compute the fingerprints and upload the weights.
   */
  static int create(Session& session, const veil_train_config_t& config,
                    const veil_layer_spec_t* layers, size_t layer_count,
                    std::unique_ptr<Training>* out);
  ~Training();

  int step(Session& session, const double* x, size_t x_count, const int32_t* labels,
           size_t batch, veil_step_result_t* result);
  int predict(Session& session, const double* x, size_t x_count, size_t batch, double* output,
              size_t out_count);
  int halve_lr(Session& session);
  int export_weights(Session& session, uint32_t layer, double* weights, size_t count);
  /**
   * Make this session worker `worker` of a data-parallel run of `workers`
   * (docs/design.md §4.6): its check vectors are derived from the run key (a
   * fresh session recomputes its fingerprints of M_0; a restored one must have
   * been sealed by the same run), and the enclaves exchange join nonces. Only
   * before the session's first step; a failure changes nothing.
   */
  int join(Session& session, const uint8_t* run_key, size_t key_len, uint32_t worker,
           uint32_t workers);

  /** Bytes of the sealed checkpoint of this state. */
  size_t checkpoint_size() const;
  /**
   * Seal the state (secrets, fingerprints, bounds, step, schedule) under the
   * caller's 32-byte key or, with key_len 0, the platform's sealing key.
   */
  int checkpoint(Session& session, const uint8_t* key, size_t key_len, uint8_t* blob,
                 size_t capacity, uint64_t* blob_len);
  /**
   * Open a sealed state for the same model into a fresh session whose device
   * already holds the weights stored beside it; every layer's weights are
   * checked against the restored fingerprints before the session is usable.
   */
  static int restore(Session& session, const veil_train_config_t& config,
                     const veil_layer_spec_t* layers, size_t layer_count, const uint8_t* key,
                     size_t key_len, const uint8_t* blob, size_t blob_len,
                     std::unique_ptr<Training>* out);

  uint64_t steps() const { return step_; }
  int32_t lr_exp() const { return lr_exp_; }


 private:
  Training() = default;

  struct Layer {
    uint32_t n = 0;  // inputs (the weight matrix has n + 1 rows: the bias is last)
    uint32_t m = 0;  // outputs
    math::Activation activation = math::Activation::identity;
    conv::Shape shape;           // a convolution's geometry (docs/design.md §4.4)
    std::vector<uint64_t> s, t;  // secret check vectors, length m and n + 1
    std::vector<uint64_t> v, w;  // fingerprints M s (n + 1) and M^T t (m), mod q
    double device_max = 0;       // max |M| as the device reports it: decides limbs
    double proven_max = 0;       // bound on |M| the enclave can prove: decides soundness
    double operand_l1 = 0;       // largest operand row L1 norm of the current step
    // Field vectors of this step's operands, computed while each operand is
    // still in cache (valid within one step): the forward check's A v and the
    // update's A t (by the pass that wrote A, or one pass before the product),
    // and from dZ (prepare_grad) the backward check's dZ w, the update's dZ s
    // and its w delta dZ^T (A t).
    std::vector<uint64_t> av, at, dzw, dzs, dw;
    std::vector<uint64_t> dv;    // the update's v delta A^T (dZ s), n + 1 values (dw: its w delta)
    bool av_ready = false, at_ready = false, dz_ready = false, dw_ready = false;
    // Magnitudes of this step's operands, gathered by the passes that wrote
    // them (math::OperandStats): A's largest row L1 norm (bias entry included)
    // and column L1 norm, dZ's largest row L1 norm and |value|. Negative when
    // unknown; then they are measured over the operand as before.
    double a_row_l1 = -1, a_col_l1 = -1, dz_row_l1 = -1, dz_max = -1;
    // This step's whole A (forward) and dZ (backward) went to the device as one
    // limb each and the host kept them, so the update asks it to reuse them
    // instead of sending them again. Sound as any update is: the fingerprints follow the enclave's
    // own A and dZ, and an update made with anything else fails the next check.
    bool device_has_a = false, device_has_dz = false;
    // This step's forward kept z as relu_mask_ (its sign) rather than in pre_.
    bool z_as_mask = false;
  };


  // The step's operands, of one element type (see step_with).
  template <typename T>
  struct Operands {
    std::vector<std::vector<T>> acts;  // A_l: input of layer l, batch x (n_l + 1)
    std::vector<std::vector<T>> grads; // dZ_l: gradient at layer l's output, batch x m_l
    std::vector<T> limb;               // one limb of a split operand
  };

  // Phases of a step, for error messages.
  enum class Phase { forward, backward, update, export_check, halve };
  static const char* phase_name(Phase p);

  int weight_scale() const;  // S = f_a + f_g + k + beta
  // Rows of layer l's products in a batch: one per example and output position.
  size_t rows_of(uint32_t l, size_t batch) const { return batch * layers_[l].shape.positions(); }
  // Layer l's input is gathered (im2col or flatten) rather than written by the pass below.
  bool gathered(uint32_t l) const { return l < layers_.size() && layers_[l].shape.windowed; }
  // From a gathered layer l's checked real dA, dZ_{l-1} (docs/design.md §4.4,
  // training_conv.cc); returns the values clipped.
  template <typename T>
  uint64_t conv_backward(uint32_t l, size_t rows, const double* real_da);
  void allocate_buffers();
  bool draw_check_vectors(const math::PrgKey& key, uint32_t li, std::vector<uint64_t>* s,
                          std::vector<uint64_t>* t) const;
  int start_layers(Session& session, const math::PrgKey& key, bool upload_weights);
  // Swap this step's deltas and growths with the run's other workers and
  // replace them by their sums over all workers (training_group.cc).
  int share_updates(Session& session, size_t batch, double* growth);
  template <typename T>
  void allocate_operands(Operands<T>& ops);
  size_t state_size() const;
  bool decode_state(Decoder& d, const veil_layer_spec_t* layers, size_t layer_count,
                    veil_train_config_t* sealed_config, Counters* counters);
  int check_budget(Session& session) const;
  int check_batch(Session& session, const double* x, size_t x_count, size_t batch,
                  const char* call, uint64_t* saturated);
  // The step's operands A_l and dZ_l have element type T: float when the
  // formats keep them narrow (integers below 2^23), else double (operands_of).
  template <typename T>
  int step_with(Session& session, const int32_t* labels, size_t batch, uint64_t saturated,
                veil_step_result_t* result);
  template <typename T>
  uint64_t load_input(const double* x, size_t batch, size_t* non_finite);
  void note_act_stats(uint32_t l, const math::OperandStats& stats, size_t batch);
  void note_grad_stats(uint32_t l, const math::OperandStats& stats);
  template <typename T>
  void prepare_grad(uint32_t l, const T* dz, size_t batch);
  void add_bias_dots(uint32_t l, size_t batch);
  template <typename T>
  int run_forward(Session& session, size_t batch, uint64_t* saturated);
  template <typename T>
  int request_product(Session& session, uint32_t l, Phase phase, const T* x, size_t batch,
                      size_t in_cols, size_t out_cols, bool keep);
  template <typename T>
  int checked_layer(Session& session, uint32_t l, Phase phase, const T* x, size_t batch,
                    int scale, double* real_out, uint64_t* saturated);
  int check_failure(Session& session, uint32_t l, Phase phase, const math::Status& st);
  template <typename T>
  const uint64_t* expected_sums(uint32_t l, bool fwd, const T* operand, size_t batch,
                                size_t in_cols, bool whole);
  template <typename T>
  math::PassResult forward_pass(uint32_t l, size_t batch, int scale, const double* z,
                                const uint64_t* expected, bool fused, double* real_out,
                                math::OperandStats* stats);
  template <typename T>
  math::PassResult backward_pass(uint32_t l, size_t batch, int scale, const double* da,
                                 const uint64_t* expected, bool fused, math::OperandStats* stats);
  template <typename T>
  uint64_t finish_limbs(uint32_t l, bool fwd, size_t batch, const double* real_out);
  math::FixedFormat act_format() const { return {config_.frac_act, config_.act_clip}; }
  math::FixedFormat grad_format() const { return {config_.frac_grad, config_.grad_clip}; }
  int ensure_sound(Session& session, uint32_t l, double operand_row_l1, Phase phase);
  template <typename T>
  int run_loss(Session& session, const int32_t* labels, size_t batch, uint64_t* saturated,
               math::LossResult* loss);
  template <typename T>
  int run_backward(Session& session, size_t batch, uint64_t* saturated);
  template <typename T>
  int update_growth(Session& session, uint32_t l, size_t batch, double* growth);
  template <typename T>
  void update_deltas(uint32_t l, size_t batch);
  template <typename T>
  int apply_update(Session& session, uint32_t l, size_t batch, double growth);
  int upload(Session& session, uint32_t l, const double* weights);
  int audit(Session& session, uint32_t l, Phase phase, std::vector<double>* weights_out);
  int refresh_device_max(Session& session, uint32_t l, Phase phase);
  int device_status(Session& session, uint32_t l, Phase phase, const char* call,
                    oe_result_t result, int status);
  int exactness_refusal(Session& session, uint32_t l, const char* product, double needed) const;
  void locate(uint32_t l, Phase phase, char* out, size_t capacity) const;
  int verification_failure(Session& session, uint32_t l, Phase phase, const char* what);

  // Marks the span of a train_step, for step numbers in error messages.
  struct InStep {
    explicit InStep(Training* t) : t_(t) { t_->in_step_ = true; }
    ~InStep() { t_->in_step_ = false; }
    Training* t_;
  };
  bool in_step_ = false;
  const char* call_name_ = "";

  veil_train_config_t config_{};
  std::vector<Layer> layers_;
  std::vector<veil_layer_spec_t> specs_;  // the model as configured: checkpoints bind it
  uint64_t step_ = 0;
  uint64_t first_step_ = 0;        // step_ when this session started (restored ones: > 0)
  bool restored_ = false;
  std::unique_ptr<Group> group_;   // set by join: this session is one worker of a run
  int32_t lr_exp_ = 0;
  int32_t batch_exp_ = 0;  // beta: the update divides by 2^beta >= max_batch
  // act_clip and grad_clip at their formats' scales (unrounded): operand bounds.
  double act_clip_int() const { return std::ldexp(config_.act_clip, config_.frac_act); }
  double grad_clip_int() const { return std::ldexp(config_.grad_clip, config_.frac_grad); }
  template <typename T>
  Operands<T>& operands_of() {
    if constexpr (std::is_same_v<T, float>)
      return narrow_ops_;
    else
      return wide_ops_;
  }
  // Narrow operands (float32) halve the bytes of every pass over them and of
  // every copy across the boundary; exact while the formats' limits (and the
  // bias entry 2^f_a) stay below 2^23.
  bool narrow_ = false;
  Operands<float> narrow_ops_;
  Operands<double> wide_ops_;
  // Per-step work buffers, sized for max_batch once at set-up.
  std::vector<std::vector<double>> pre_;    // z_l: real pre-activations, batch x m_l
  std::vector<std::vector<uint8_t>> relu_mask_;  // z_l > 0 of hidden ReLU layers, in a step
  std::vector<double> grad_real_;           // real gradients before quantization
  HostBuffer result_;                       // host memory the device's results land in
  HostBuffer sent_[2];                      // and the operands go out in: A (0), dZ (1)
  std::vector<double> device_out_;          // their enclave copy, on the limb and conv paths
  std::vector<double> limb_;                // real values of the rare paths
  std::vector<double> scratch_;
  std::vector<double> scratch_growth_;      // each layer's update growth, in a step
  std::vector<double> conv_tensor_;         // a pooled (or input) tensor, quantized or real
  std::vector<std::vector<uint8_t>> pool_arg_;  // each max-pooled output's argmax, in a step
  std::vector<double> col_l1_;              // column L1 norms of the operand a pass writes
  std::vector<double> col_scratch_;         // and their parallel blocks' partial sums
  std::vector<double> next_scratch_;        // a fused pass's split check vectors
  std::vector<uint64_t> expected_, row_mod_;  // field vectors
};

}  // namespace veil::enclave
