#include "training.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "math/field.h"
#include "math/fixed_point.h"
#include "math/freivalds.h"
#include "math/fused.h"
#include "math/loss.h"
#include "math/prg.h"
#include "math/status.h"
#include "exactness.h"
#include "platform.h"
#include "seal.h"
#include "session.h"

namespace veil::enclave {
namespace {

// Buffers of the rare paths grow to the largest size met and never shrink,
// so that no step zeroes them again.
template <typename T>
void grow(std::vector<T>* buffer, size_t size) {
  if (buffer->size() < size) buffer->resize(size);
}


// The enclave refuses configurations whose work buffers exceed this.
constexpr double kMaxBufferBytes = 2.0 * 1024 * 1024 * 1024;

// Streams of the secret PRG (keyed by a fresh random key); each layer gets its own.
constexpr uint32_t kStreamSecretS = 1;
constexpr uint32_t kStreamSecretT = 2;

using Field = math::FieldQ;

bool is_integrity_fault(math::Fault f) {
  return f == math::Fault::not_finite || f == math::Fault::not_integral ||
         f == math::Fault::out_of_range || f == math::Fault::mismatch;
}



// Narrow operands (float32) travel through the _narrow ocalls and are written
// by the fused passes into their _narrow outputs.
template <typename T>
constexpr bool kNarrow = std::is_same_v<T, float>;


}  // namespace



Training::~Training() {
  for (Layer& l : layers_)
    for (std::vector<uint64_t>* secret : {&l.s, &l.t, &l.v, &l.w})
      wipe(secret->data(), secret->size() * sizeof(uint64_t));
}

const char* Training::phase_name(Phase p) {
  switch (p) {
    case Phase::forward: return "forward";
    case Phase::backward: return "backward";
    case Phase::update: return "update";
    case Phase::export_check: return "export";
    case Phase::halve: return "halve";
  }
  return "?";
}

// Where a failure happened, for its message. Steps are numbered from 1:
// "step N" is the N-th train_step; outside a step (predict, export, halving)
// the message names the call and says how many steps came before.
void Training::locate(uint32_t l, Phase phase, char* out, size_t capacity) const {
  if (in_step_)
    std::snprintf(out, capacity, "layer %u, phase %s, step %llu", l, phase_name(phase),
                  static_cast<unsigned long long>(step_ + 1));
  else
    std::snprintf(out, capacity, "layer %u, phase %s (%s), after step %llu", l,
                  phase_name(phase), call_name_, static_cast<unsigned long long>(step_));
}

int Training::verification_failure(Session& session, uint32_t l, Phase phase, const char* what) {
  char where[128];
  locate(l, phase, where, sizeof where);
  return session.fail(VEIL_ERR_VERIFICATION, "integrity check failed: %s: %s", where, what);
}

int Training::exactness_refusal(Session& session, uint32_t l, const char* product,
                                double needed) const {
  return session.fail(VEIL_ERR_CONFIG,
                      "layer %u: the %s product could reach 2^%.1f, beyond the exact float64 range "
                      "2^53 even split into %d limbs; lower lr (raise lr_exp), frac_act, "
                      "frac_grad, act_clip, grad_clip or weight_max, or narrow the layer",
                      l, product, std::log2(needed), kMaxLimbs);
}

int Training::create(Session& session, const veil_train_config_t& config,
                     const veil_layer_spec_t* layers, size_t layer_count,
                     std::unique_ptr<Training>* out) {
  int rc = validate_model(session, config, layers, layer_count);
  if (rc != VEIL_OK) return rc;

  // Work buffers: refuse a configuration that would exhaust enclave memory.
  double bytes = 0, largest = 0;
  for (size_t i = 0; i < layer_count; ++i) {
    const double rows = static_cast<double>(config.max_batch) * conv::shape_of(layers, i).positions();
    bytes += 8.0 * rows * (2.0 * (layers[i].inputs + 1) + 3.0 * layers[i].outputs + 4) +
             8.0 * 5 * (layers[i].inputs + 1 + layers[i].outputs);
    largest = std::max(largest, (layers[i].inputs + 1.0) * layers[i].outputs);
  }
  // Set-up holds the largest layer's initial weights and their random bits at once;
  // a convolution first also keeps the batch's images (docs/design.md §4.4).
  bytes += 16.0 * largest + 8.0 * config.max_batch * conv::input_features(layers[0]);
  if (bytes > kMaxBufferBytes)
    return session.fail(VEIL_ERR_RESOURCE,
                        "the model needs %.0f MiB of enclave memory at max_batch=%u; the limit is "
                        "%.0f MiB: lower max_batch or the widths",
                        bytes / 1048576.0, config.max_batch, kMaxBufferBytes / 1048576.0);

  std::unique_ptr<Training> t(new Training());
  t->config_ = config;
  t->lr_exp_ = config.lr_exp;
  t->batch_exp_ = ceil_log2(config.max_batch);
  t->call_name_ = "train_init";  // names the call in upload errors
  shape_layers(layers, layer_count, &t->layers_);
  t->specs_.assign(layers, layers + layer_count);
  int status = t->check_budget(session);
  if (status != VEIL_OK) return status;

  // Secrets come from a fresh key that never leaves the enclave (a run of
  // several workers replaces them with its run key's: join).
  math::PrgKey secret_key;
  if (!secure_random(secret_key.bytes, sizeof secret_key.bytes))
    return session.fail(VEIL_ERR_INTERNAL, "the platform's random source failed");
  rc = t->start_layers(session, secret_key, true);
  wipe(secret_key.bytes, sizeof secret_key.bytes);
  if (rc != VEIL_OK) return rc;

  t->allocate_buffers();
  *out = std::move(t);
  return VEIL_OK;
}

// Layer li's check vectors s (m values) and t (n + 1) from the secret key.
bool Training::draw_check_vectors(const math::PrgKey& key, uint32_t li, std::vector<uint64_t>* s,
                                  std::vector<uint64_t>* t) const {
  math::Prg secrets;
  const Layer& l = layers_[li];
  s->resize(l.m);
  t->resize(l.n + 1);
  return secrets.init(key).ok() &&
         secrets.uniform_mod_q(math::prg_stream(li, kStreamSecretS), s->data(), l.m).ok() &&
         secrets.uniform_mod_q(math::prg_stream(li, kStreamSecretT), t->data(), l.n + 1).ok();
}

// Every layer's check vectors from the secret key, its initial weights M_0
// (from the public seed), the fingerprints v = M_0 s and w = M_0^T t and the
// bounds on |M_0|; with upload, the device receives M_0.
int Training::start_layers(Session& session, const math::PrgKey& key, bool upload_weights) {
  const int scale = weight_scale();
  std::vector<double> weights;
  for (uint32_t li = 0; li < layers_.size(); ++li) {
    Layer& l = layers_[li];
    const size_t rows = l.n + 1, cols = l.m;
    if (!initial_weights(config_, li, l.n, l.m, l.activation, &weights) ||
        !draw_check_vectors(key, li, &l.s, &l.t))
      return session.fail(VEIL_ERR_INTERNAL, "the enclave's CSPRNG failed");
    for (double& w : weights) w = std::nearbyint(std::ldexp(w, scale));
    l.v.resize(rows);
    l.w.resize(cols);
    math::matvec_mod(weights.data(), rows, cols, cols, l.s.data(), l.v.data());
    math::matvec_t_mod(weights.data(), rows, cols, cols, l.t.data(), l.w.data());
    l.proven_max = max_abs(weights.data(), weights.size());
    l.device_max = l.proven_max;
    if (upload_weights) {
      int rc = upload(session, li, weights.data());
      if (rc != VEIL_OK) return rc;
    }
  }
  wipe(weights.data(), weights.size() * sizeof(double));
  return VEIL_OK;
}

void Training::allocate_buffers() {
  narrow_ = math::fixed_limit(act_format()) < math::kNarrowLimit &&
            math::fixed_limit(grad_format()) < math::kNarrowLimit &&
            std::ldexp(1.0, config_.frac_act) < math::kNarrowLimit;
  if (narrow_)
    allocate_operands(narrow_ops_);
  else
    allocate_operands(wide_ops_);
  pre_.resize(layers_.size());
  relu_mask_.resize(layers_.size());
  pool_arg_.resize(layers_.size());
  const size_t max_batch = config_.max_batch;
  const conv::Shape& first = layers_.front().shape;
  size_t widest = 0, widest_matrix = 0, most_rows = 0;
  size_t widest_tensor = first.windowed ? first.tensor_size() : 0;
  for (const Layer& l : layers_) {
    const size_t positions = l.shape.positions();
    widest = std::max<size_t>(widest, l.n + 1);
    widest_matrix = std::max(widest_matrix, positions * std::max<size_t>(l.n + 1, l.m));
    most_rows = std::max(most_rows, positions);
    widest_tensor = std::max(widest_tensor, positions * l.m);
  }
  col_l1_.resize(widest);
  col_scratch_.resize((math::kMaxBlocks - 1) * widest);
  next_scratch_.resize(6 * widest);
  // Sized once for the largest layer: a vector that shrank for the narrow
  // output layer would zero megabytes again each time it grew back.
  grad_real_.resize(max_batch * widest_matrix);  // device_out_ grows when a product needs it
  conv_tensor_.resize(max_batch * widest_tensor);
  expected_.resize(max_batch * most_rows);
  row_mod_.resize(max_batch * most_rows);
  scratch_growth_.resize(layers_.size());
  for (uint32_t li = 0; li < layers_.size(); ++li) {
    Layer& l = layers_[li];
    const size_t rows = rows_of(li, max_batch);
    if (l.activation == math::Activation::relu && li + 1 < layers_.size())
      relu_mask_[li].resize(rows * l.m);
    if (l.shape.pool == VEIL_POOL_MAX) pool_arg_[li].resize(max_batch * l.shape.pooled() * l.m);
    pre_[li].resize(rows * l.m);
    for (std::vector<uint64_t>* v : {&l.av, &l.at, &l.dzw, &l.dzs}) v->resize(rows);
    l.dv.resize(l.n + 1);
    l.dw.resize(l.m);
  }
}

template <typename T>
void Training::allocate_operands(Operands<T>& ops) {
  ops.acts.resize(layers_.size());
  // Every layer keeps its dZ until the step's updates, which all come after
  // its last backward product (all or nothing: see step_with).
  ops.grads.resize(layers_.size());
  for (uint32_t li = 0; li < layers_.size(); ++li) {
    ops.acts[li].resize(rows_of(li, config_.max_batch) * (layers_[li].n + 1));
    ops.grads[li].resize(rows_of(li, config_.max_batch) * layers_[li].m);
  }
}

int Training::weight_scale() const {
  return config_.frac_act + config_.frac_grad + lr_exp_ + batch_exp_;
}

// Worst case over the whole configuration: with inputs and activations clipped
// to act_clip, gradients to grad_clip and weights within weight_max, every
// product must be computable exactly in at most kMaxLimbs limbs. (Soundness
// bounds use the actual operands and are enforced before each product.)
int Training::check_budget(Session& session) const {
  const double weight_int = std::ldexp(config_.weight_max, weight_scale());
  // The bias entry 2^f_a of every forward operand row exceeds act_clip when act_clip < 1.
  const double act_max = std::max(act_clip_int(), std::ldexp(1.0, config_.frac_act));
  for (uint32_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    const double act_row = (l.n * act_clip_int()) + std::ldexp(1.0, config_.frac_act);
    LimbPlan fwd = plan_limbs(act_row, act_max, l.n + 1, weight_int);
    if (fwd.count == 0 || fwd.count > kMaxLimbs)
      return exactness_refusal(session, li, "forward", act_row * weight_int);
    if (li > 0) {
      const double grad_row = l.m * grad_clip_int();
      LimbPlan bwd = plan_limbs(grad_row, grad_clip_int(), l.m, weight_int);
      if (bwd.count == 0 || bwd.count > kMaxLimbs)
        return exactness_refusal(session, li, "backward", grad_row * weight_int);
    }
    // A convolution's update sums over every output position of the batch.
    const double update = static_cast<double>(rows_of(li, config_.max_batch)) * act_max *
                          grad_clip_int();
    if (weight_int + update >= kExact)
      return exactness_refusal(session, li, "update", weight_int + update);
  }
  return VEIL_OK;
}

int Training::device_status(Session& session, uint32_t l, Phase phase, const char* call,
                            oe_result_t result, int status) {
  if (result == OE_OK && status == VEIL_OK) return VEIL_OK;
  // After the device may have changed its weights, the enclave can no longer
  // vouch for the session: it ends.
  const bool partial = phase == Phase::update || phase == Phase::halve;
  if (partial) session.abort();
  char where[128];
  locate(l, phase, where, sizeof where);
  const char* consequence =
      partial ? "; the device may hold part of the change, so the session is aborted" : "";
  if (result != OE_OK)
    return session.fail(VEIL_ERR_DEVICE, "%s: %s failed: %s%s", where, call,
                        oe_result_str(result), consequence);
  return session.fail(VEIL_ERR_DEVICE, "%s: %s: the device failed%s", where, call, consequence);
}

int Training::upload(Session& session, uint32_t l, const double* weights) {
  const Layer& layer = layers_[l];
  int status = VEIL_OK;
  oe_result_t r = ocall_device_upload(&status, session.id(), l, weights, layer.n + 1, layer.m,
                                      static_cast<size_t>(layer.n + 1) * layer.m);
  return device_status(session, l, Phase::update, "upload", r, status);
}

int Training::refresh_device_max(Session& session, uint32_t l, Phase phase) {
  double reported = 0;
  int status = VEIL_OK;
  oe_result_t r = ocall_device_max_abs(&status, session.id(), l, &reported);
  int rc = device_status(session, l, phase, "max_abs", r, status);
  if (rc != VEIL_OK) return rc;
  session.counters().max_abs_refreshes++;
  // A lie here only changes how products are split; soundness uses proven_max.
  if (!std::isfinite(reported) || reported < 0) reported = layers_[l].proven_max;
  layers_[l].device_max = std::min(reported, layers_[l].proven_max);
  return VEIL_OK;
}

// Checks the batch's shape and quantizes it into A_0 (load_input), storing
// how many values saturated in *saturated.
int Training::check_batch(Session& session, const double* x, size_t x_count, size_t batch,
                          const char* call, uint64_t* saturated) {
  const conv::Shape& first = layers_.front().shape;
  const size_t features = first.windowed ? first.tensor_size() : layers_.front().n;
  if (batch == 0)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: the batch is empty", call);
  if (batch > config_.max_batch)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "%s: batch of %zu rows exceeds max_batch=%u set at configuration", call,
                        batch, config_.max_batch);
  if (x_count != batch * features)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "%s: x holds %zu values but the batch is %zu x %zu", call, x_count, batch,
                        features);
  // x is host memory: quantizing reads each value once and counts the
  // non-finite ones; only when there is one is it scanned again, to name it
  // (the host may have changed it since: then the message names none).
  size_t non_finite = 0;
  *saturated = narrow_ ? load_input<float>(x, batch, &non_finite)
                       : load_input<double>(x, batch, &non_finite);
  if (non_finite == 0) return VEIL_OK;
  for (size_t i = 0; i < x_count; ++i) {
    const double v = x[i];
    if (!std::isfinite(v))
      return session.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: x[%zu, %zu] is %s; inputs must be finite",
                          call, i / features, i % features, std::isnan(v) ? "NaN" : "infinite");
  }
  return session.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: x holds a value that is not finite", call);
}

// Quantize the batch into A_0 with its bias column.
template <typename T>
uint64_t Training::load_input(const double* x, size_t batch, size_t* non_finite) {
  for (Layer& l : layers_) l.a_row_l1 = l.a_col_l1 = l.dz_row_l1 = l.dz_max = -1;
  const size_t n = layers_.front().n;
  T* a = operands_of<T>().acts[0].data();
  math::OperandStats stats;
  const T one = static_cast<T>(std::ldexp(1.0, config_.frac_act));
  const conv::Shape& first = layers_.front().shape;
  if (first.windowed) {  // quantize the (C, H, W) images, then gather A_0 from them
    const uint64_t saturated =
        conv::first_operand(first, x, batch, act_format(), &conv_tensor_, &stats, a);
    *non_finite = stats.non_finite;
    return saturated;
  }
  stats.col_l1 = col_l1_.data();
  stats.col_scratch = col_scratch_.data();
  math::PassResult r = math::quantize(x, batch, n, n, act_format(), a, n + 1, &stats);
  for (size_t i = 0; i < batch; ++i) a[i * (n + 1) + n] = one;
  note_act_stats(0, stats, batch);
  *non_finite = stats.non_finite;
  return r.saturated;
}

// Record what a pass reported about A_l (its n columns; the bias column is
// 2^f_a in every row): the bounds apply_update and checked_layer would
// otherwise measure in passes of their own, with the same values.
void Training::note_act_stats(uint32_t l, const math::OperandStats& stats, size_t batch) {
  Layer& layer = layers_[l];
  const double one = std::ldexp(1.0, config_.frac_act);
  layer.a_row_l1 = exact_row_l1(stats, layer.n, math::fixed_limit(act_format()), one);
  double col = 0;
  for (size_t j = 0; j < layer.n; ++j) col = std::max(col, stats.col_l1[j]);
  // The bias column's sum, batch * 2^f_a, is exact (batch <= 2^16, f_a <= 20).
  layer.a_col_l1 = std::max(col, static_cast<double>(batch) * one);
}

// Make sure every true product with an operand of this row L1 norm provably
// stays below the soundness limit; if the loose bound has grown too far, read
// the weights once, check them against the fingerprints and restart from their
// actual maximum.
int Training::ensure_sound(Session& session, uint32_t l, double operand_row_l1, Phase phase) {
  if (operand_row_l1 * layers_[l].proven_max < kSoundLimit) return VEIL_OK;
  int rc = audit(session, l, phase, nullptr);
  if (rc != VEIL_OK) return rc;
  if (operand_row_l1 * layers_[l].proven_max < kSoundLimit) return VEIL_OK;
  return exactness_refusal(session, l, phase == Phase::forward ? "forward" : "backward",
                           operand_row_l1 * layers_[l].proven_max);
}

// Ask the device for one product of a layer's weights: X * M (forward) or
// X * M^T (backward); with `keep`, the host keeps X for the layer's update.
template <typename T>
int Training::request_product(Session& session, uint32_t l, Phase phase, const T* x,
                              size_t batch, size_t in_cols, size_t out_cols, bool keep) {
  const bool fwd = phase == Phase::forward;
  const uint64_t id = session.id();
  const size_t n = batch * in_cols, out_n = batch * out_cols;
  const T* sent = sent_[fwd ? 0 : 1].lend(x, n);
  if (sent == nullptr || !result_.reserve<double>(out_n))
    return session.fail(VEIL_ERR_RESOURCE, "layer %u: the host gave no memory for the product", l);
  double* out = result_.data<double>();
  x = sent;
  int status = VEIL_OK;
  oe_result_t r;
  if constexpr (kNarrow<T>)
    r = fwd ? ocall_device_forward_narrow(&status, id, l, x, n, batch, out, out_n, keep)
            : ocall_device_backward_narrow(&status, id, l, x, n, batch, out, out_n, keep);
  else
    r = fwd ? ocall_device_forward(&status, id, l, x, n, batch, out, out_n, keep)
            : ocall_device_backward(&status, id, l, x, n, batch, out, out_n, keep);
  session.counters().products++;
  return device_status(session, l, phase, phase_name(phase), r, status);
}

int Training::check_failure(Session& session, uint32_t l, Phase phase, const math::Status& st) {
  char what[200];
  if (is_integrity_fault(st.fault)) {
    math::describe_status(st, "the device's product failed its check", what, sizeof what);
    return verification_failure(session, l, phase, what);
  }
  math::describe_status(st, "internal check error", what, sizeof what);
  return session.fail(VEIL_ERR_INTERNAL, "layer %u, phase %s: %s", l, phase_name(phase), what);
}

// One layer's checked product, X * M (forward) or X * M^T (backward). When one
// product could lose exactness the operand is split into limbs: each limb's
// product is range-checked and Freivalds-checked on its own, and their sum,
// scaled by 2^-scale, lands in real_out (finish_limbs). On the common one-limb
// path the fused kernel also applies the activation (forward) or its
// derivative (backward) and quantizes the next operand in the same pass.
template <typename T>
int Training::checked_layer(Session& session, uint32_t l, Phase phase, const T* x,
                            size_t batch, int scale, double* real_out, uint64_t* saturated) {
  Operands<T>& ops = operands_of<T>();
  Layer& layer = layers_[l];
  const bool fwd = phase == Phase::forward;
  const size_t in_cols = fwd ? layer.n + 1 : layer.m;
  const size_t out_cols = fwd ? layer.m : layer.n + 1;
  // The clip gives a bound on every operand row for free; only when it is not
  // enough are the actual row norms measured (one pass over the operand). A
  // forward row holds n clipped activations and the bias entry 2^f_a, which
  // act_clip < 1 does not bound.
  double row_l1 = fwd ? layer.n * act_clip_int() + std::ldexp(1.0, config_.frac_act)
                      : static_cast<double>(in_cols) * grad_clip_int();
  if (row_l1 * layer.device_max >= kExact || row_l1 * layer.proven_max >= kSoundLimit) {
    const double known = fwd ? layer.a_row_l1 : layer.dz_row_l1;
    row_l1 = known >= 0 ? known : max_row_l1(x, batch, in_cols);
  }
  int rc = ensure_sound(session, l, row_l1, phase);
  if (rc != VEIL_OK) return rc;
  layer.operand_l1 = fwd ? row_l1 : std::max(layer.operand_l1, row_l1);
  LimbPlan plan = row_l1 * layer.device_max < kExact
                      ? LimbPlan{53, 1}
                      : plan_limbs(row_l1, max_abs(x, batch * in_cols), in_cols, layer.device_max);
  if (plan.count == 0 || plan.count > 64)
    return exactness_refusal(session, l, fwd ? "forward" : "backward", row_l1 * layer.device_max);

  if (plan.count > 1) {
    grow(&ops.limb, batch * in_cols);
    session.counters().limb_splits += static_cast<uint64_t>(plan.count);
  }
  for (int limb = 0; limb < plan.count; ++limb) {
    const T* operand = x;
    if (plan.count > 1) {
      extract_limb(x, batch * in_cols, plan.bits, limb, ops.limb.data());
      operand = ops.limb.data();
    }
    const uint64_t* expected = expected_sums(l, fwd, operand, batch, in_cols, plan.count == 1);
    // A whole step operand (one limb) is kept by the host for the update.
    const bool keep = in_step_ && plan.count == 1;
    rc = request_product(session, l, phase, operand, batch, in_cols, out_cols, keep);
    if (rc != VEIL_OK) return rc;
    if (keep) (fwd ? layer.device_has_a : layer.device_has_dz) = true;
    // Nothing the device returned is used before it passes its check. The
    // fused pass reads each element of the host's result once; the limb path
    // reads its elements twice (check, then sum), so it takes an enclave copy.
    math::OperandStats stats;
    // Gathered operands are laid out by conv::next_operand and conv_backward instead.
    const bool fused = plan.count == 1 && !(fwd ? gathered(l + 1) : gathered(l));
    const double* result = result_.data<double>();
    if (!fused) {
      grow(&device_out_, batch * out_cols);
      result_.copy_to(device_out_.data(), batch * out_cols * sizeof(double));
      result = device_out_.data();
    }
    math::PassResult pass =
        fwd ? forward_pass<T>(l, batch, scale, result, expected, fused, real_out, &stats)
            : backward_pass<T>(l, batch, scale, result, expected, fused, &stats);
    if (!pass.status.ok()) return check_failure(session, l, phase, pass.status);
    session.counters().checks_passed++;
    if (fused) {
      const bool last = l + 1 == layers_.size();
      *saturated += pass.saturated;
      if (fwd && !last) note_act_stats(l + 1, stats, batch);
      if (fwd && !last && in_step_) add_bias_dots(l + 1, batch);
      if (!fwd) note_grad_stats(l - 1, stats);
      return VEIL_OK;
    }
    // Limb t carries weight 2^(t * bits).
    const int shift = plan.bits * limb - scale;
    for (size_t i = 0; i < batch * out_cols; ++i) {
      double part = std::ldexp(device_out_[i], shift);
      real_out[i] = limb == 0 ? part : real_out[i] + part;
    }
  }
  *saturated += finish_limbs<T>(l, fwd, batch, real_out);
  return VEIL_OK;
}

// The row sums a layer's product must match: X v (forward) or X w (backward),
// mod q. They come first, while the operand the enclave just wrote is still in
// cache (the device's product evicts it); the ocall's copy of the operand then
// reads it from cache too. In a step, the update's A t comes from the same
// pass as A v, and dZ w was computed with the rest of dZ's vectors when dZ was
// written (prepare_grad).
template <typename T>
const uint64_t* Training::expected_sums(uint32_t l, bool fwd, const T* operand, size_t batch,
                                        size_t in_cols, bool whole) {
  Layer& layer = layers_[l];
  if (fwd && whole && layer.av_ready) return layer.av.data();
  if (!fwd && whole && layer.dz_ready) return layer.dzw.data();
  const uint64_t* fingerprint = fwd ? layer.v.data() : layer.w.data();
  if (fwd && in_step_ && whole) {
    math::matvec2_mod(operand, batch, in_cols, in_cols, fingerprint, layer.t.data(),
                      expected_.data(), layer.at.data());
    layer.at_ready = true;
  } else {
    math::matvec_mod(operand, batch, in_cols, in_cols, fingerprint, expected_.data());
  }
  return expected_.data();
}

// Check the device's Z and, on the fused path, apply the activation and write
// the next layer's operand with its stats and, in a step, its A v and A t.
template <typename T>
math::PassResult Training::forward_pass(uint32_t l, size_t batch, int scale, const double* z,
                                        const uint64_t* expected, bool fused, double* real_out,
                                        math::OperandStats* stats) {
  Layer& layer = layers_[l];
  const bool last = l + 1 == layers_.size();
  math::ForwardArgs f;
  f.z = z;
  f.rows = batch;
  f.cols = layer.m;
  f.ld_z = layer.m;
  f.scale = scale;
  f.s = layer.s.data();
  f.expected = expected;
  f.act = layer.activation;
  if (!fused) return math::fused_forward(f);
  // What the layer above's backward needs of z: for ReLU only its sign, one
  // byte per element; nothing outside a step; the loss needs all of the last
  // layer's.
  layer.z_as_mask = in_step_ && !last && layer.activation == math::Activation::relu;
  if (layer.z_as_mask) {
    f.relu_mask = relu_mask_[l].data();
    f.ld_relu_mask = layer.m;
  } else if (in_step_ || last) {
    f.z_real = real_out;
    f.ld_z_real = layer.m;
  }
  if (!last) {
    if constexpr (kNarrow<T>) f.a_next_narrow = operands_of<T>().acts[l + 1].data();
    else f.a_next = operands_of<T>().acts[l + 1].data();
    f.ld_a_next = layer.m + 1;
    f.a_format = act_format();
    stats->col_l1 = col_l1_.data();
    stats->col_scratch = col_scratch_.data();
    f.a_stats = stats;
    if (in_step_) {  // the next layer's A v and A t, from this pass
      Layer& next = layers_[l + 1];
      f.next_v[0] = next.v.data();
      f.next_v[1] = next.t.data();
      f.next_dots[0] = next.av.data();
      f.next_dots[1] = next.at.data();
      f.next_scratch = next_scratch_.data();
    }
  }
  return math::fused_forward(f);
}

// Check the device's dA and, on the fused path, multiply by the activation's
// derivative below and write dZ of the layer below.
template <typename T>
math::PassResult Training::backward_pass(uint32_t l, size_t batch, int scale, const double* da,
                                         const uint64_t* expected, bool fused,
                                         math::OperandStats* stats) {
  const Layer& layer = layers_[l];
  const Layer& below = layers_[l - 1];
  math::BackwardArgs b;
  b.da = da;
  b.rows = batch;
  b.cols = layer.n + 1;
  b.ld_da = layer.n + 1;
  b.scale = scale;
  b.t = layer.t.data();
  b.expected = expected;
  b.act = below.activation;
  if (!fused) return math::fused_backward(b);
  if (below.z_as_mask) {
    b.relu_mask_prev = relu_mask_[l - 1].data();
    b.ld_relu_mask_prev = layer.n;
  } else {
    b.z_prev = pre_[l - 1].data();
    b.ld_z_prev = layer.n;
  }
  b.out_cols = layer.n;
  if constexpr (kNarrow<T>) b.dz_prev_narrow = operands_of<T>().grads[l - 1].data();
  else b.dz_prev = operands_of<T>().grads[l - 1].data();
  b.ld_dz_prev = layer.n;
  b.g_format = grad_format();
  b.dz_stats = stats;
  return math::fused_backward(b);
}

// The limb path finishes what the fused kernel would have done with the
// summed real product: the next activation (forward) or dZ below (backward).
// Returns how many values saturated.
template <typename T>
uint64_t Training::finish_limbs(uint32_t l, bool fwd, size_t batch, const double* real_out) {
  Operands<T>& ops = operands_of<T>();
  const Layer& layer = layers_[l];
  if (fwd && gathered(l + 1))
    return conv::next_operand(layer.shape, layers_[l + 1].shape, layer.activation, layer.m,
                              real_out, batch / layer.shape.positions(), act_format(), &limb_,
                              &conv_tensor_, pool_arg_[l].data(), ops.acts[l + 1].data());
  if (!fwd && gathered(l)) return conv_backward<T>(l, batch, real_out);
  if (fwd) {
    if (l + 1 == layers_.size()) return 0;
    const size_t m = layer.m;
    grow(&limb_, batch * m);
    for (size_t i = 0; i < batch * m; ++i) limb_[i] = math::activate(layer.activation, real_out[i]);
    return math::quantize(limb_.data(), batch, m, m, act_format(), ops.acts[l + 1].data(), m + 1,
                          nullptr)
        .saturated;
  }
  const size_t n = layer.n, rows = layer.n + 1;
  const Layer& below = layers_[l - 1];
  const double* z_prev = pre_[l - 1].data();
  const uint8_t* positive = relu_mask_[l - 1].data();
  grow(&limb_, batch * n);
  for (size_t i = 0; i < batch; ++i)
    for (size_t k = 0; k < n; ++k)
      limb_[i * n + k] =
          real_out[i * rows + k] *
          (below.z_as_mask ? (positive[i * n + k] != 0 ? 1.0 : 0.0)
                           : math::activation_derivative(below.activation, z_prev[i * n + k]));
  return math::quantize(limb_.data(), batch, n, n, grad_format(), ops.grads[l - 1].data(), n,
                        nullptr)
      .saturated;
}

// Everything the enclave computes from dZ_l, in one pass right after it was
// written and is still in cache (by the time the layer's own check and update
// run, the device's products have evicted it): the backward check's dZ w,
// the update's dZ s and, with A t from the forward pass, its w delta
// dZ^T (A t). dZ and w do not change before they are used.
template <typename T>
void Training::prepare_grad(uint32_t l, const T* dz, size_t batch) {
  Layer& layer = layers_[l];
  const size_t m = layer.m;
  if (l > 0)
    math::matvec2_mod(dz, batch, m, m, layer.w.data(), layer.s.data(), layer.dzw.data(),
                      layer.dzs.data());
  else
    math::matvec_mod(dz, batch, m, m, layer.s.data(), layer.dzs.data());
  layer.dz_ready = true;
  if (layer.at_ready) {
    math::matvec_t_mod(dz, batch, m, m, layer.at.data(), layer.dw.data());
    layer.dw_ready = true;
  }
}

// The fused pass that wrote A_l left A_l v and A_l t without the bias column,
// whose entries are all 2^f_a; add its terms and mark both ready.
void Training::add_bias_dots(uint32_t l, size_t batch) {
  Layer& layer = layers_[l];
  const uint64_t one = Field::from_int(int64_t{1} << config_.frac_act);
  const uint64_t bias_v = Field::mul(one, layer.v[layer.n]);
  const uint64_t bias_t = Field::mul(one, layer.t[layer.n]);
  for (size_t i = 0; i < batch; ++i) {
    layer.av[i] = Field::add(layer.av[i], bias_v);
    layer.at[i] = Field::add(layer.at[i], bias_t);
  }
  layer.av_ready = layer.at_ready = true;
}

// As note_act_stats, for dZ_l (m columns, no bias).
void Training::note_grad_stats(uint32_t l, const math::OperandStats& stats) {
  Layer& layer = layers_[l];
  layer.dz_row_l1 = exact_row_l1(stats, layer.m, math::fixed_limit(grad_format()), 0.0);
  layer.dz_max = stats.max_abs;
}

template <typename T>
int Training::run_forward(Session& session, size_t batch, uint64_t* saturated) {
  Operands<T>& ops = operands_of<T>();
  for (Layer& l : layers_) {
    l.av_ready = l.at_ready = l.dz_ready = l.dw_ready = false;
    l.device_has_a = l.device_has_dz = false;
    l.z_as_mask = false;
  }
  const int scale = config_.frac_act + weight_scale();
  const T one = static_cast<T>(std::ldexp(1.0, config_.frac_act));
  for (uint32_t l = 0; l < layers_.size(); ++l) {
    const size_t rows = rows_of(l, batch);
    int rc = checked_layer(session, l, Phase::forward, ops.acts[l].data(), rows, scale,
                           pre_[l].data(), saturated);
    if (rc != VEIL_OK) return rc;
    if (l + 1 < layers_.size() && !gathered(l + 1)) {
      const size_t m = layers_[l].m;
      T* next = ops.acts[l + 1].data();
      for (size_t i = 0; i < rows; ++i) next[i * (m + 1) + m] = one;  // the bias column
    }
  }
  return VEIL_OK;
}

// How much an honest update of layer l can raise max |M| (A's largest column
// L1 norm times dZ's largest |value|), or a refusal when M - A^T dZ could
// leave the exact float64 range on the device. Changes nothing.
template <typename T>
int Training::update_growth(Session& session, uint32_t l, size_t batch, double* growth) {
  Operands<T>& ops = operands_of<T>();
  Layer& layer = layers_[l];
  const size_t rows = layer.n + 1, cols = layer.m;
  const double a_col = layer.a_col_l1 >= 0 ? layer.a_col_l1
                                            : max_col_l1(ops.acts[l].data(), batch, rows, scratch_);
  const double dz_max =
      layer.dz_max >= 0 ? layer.dz_max : max_abs(ops.grads[l].data(), batch * cols);
  *growth = a_col * dz_max;
  if (layer.device_max + *growth >= kExact)
    return exactness_refusal(session, l, "update", layer.device_max + *growth);
  return VEIL_OK;
}

// The fingerprint deltas of layer l's update M <- M - A^T dZ, into layer.dv
// (A^T (dZ s), n + 1 values) and layer.dw (dZ^T (A t), m values): O(B (n + m)).
// No check is needed now: a wrong update makes the next product that uses M,
// or the next audit, fail.
template <typename T>
void Training::update_deltas(uint32_t l, size_t batch) {
  Operands<T>& ops = operands_of<T>();
  Layer& layer = layers_[l];
  const size_t rows = layer.n + 1, cols = layer.m;
  const T* a = ops.acts[l].data();
  const T* dz = ops.grads[l].data();
  const uint64_t* dzs = layer.dzs.data();
  if (!layer.dz_ready) {
    math::matvec_mod(dz, batch, cols, cols, layer.s.data(), row_mod_.data());
    dzs = row_mod_.data();
  }
  math::matvec_t_mod(a, batch, rows, rows, dzs, layer.dv.data());
  if (!layer.dw_ready) {
    const uint64_t* at = layer.at.data();
    if (!layer.at_ready) {
      math::matvec_mod(a, batch, rows, rows, layer.t.data(), row_mod_.data());
      at = row_mod_.data();
    }
    math::matvec_t_mod(dz, batch, cols, cols, at, layer.dw.data());
  }
}

// Send layer l's update to the device and, once it has taken it, subtract the
// deltas (update_deltas, or the run's sums of them: share_updates) from the
// fingerprints and add growth to the bounds.
template <typename T>
int Training::apply_update(Session& session, uint32_t l, size_t batch, double growth) {
  Operands<T>& ops = operands_of<T>();
  Layer& layer = layers_[l];
  const size_t rows = layer.n + 1, cols = layer.m;
  layer.av_ready = layer.at_ready = layer.dz_ready = layer.dw_ready = false;
  const bool send_a = !layer.device_has_a, send_dz = !layer.device_has_dz;
  layer.device_has_a = layer.device_has_dz = false;
  session.counters().update_operands_sent += static_cast<uint64_t>(send_a) + send_dz;
  const size_t a_n = send_a ? batch * rows : 0, dz_n = send_dz ? batch * cols : 0;
  const T* a_sent = sent_[0].lend(ops.acts[l].data(), a_n);
  const T* dz_sent = sent_[1].lend(ops.grads[l].data(), dz_n);
  if ((a_n && !a_sent) || (dz_n && !dz_sent)) {
    session.abort();  // earlier layers of the step may have been updated
    return session.fail(VEIL_ERR_RESOURCE, "layer %u: the host gave no memory for the update", l);
  }
  int status = VEIL_OK;
  oe_result_t r;
  if constexpr (kNarrow<T>)
    r = ocall_device_update_narrow(&status, session.id(), l, a_sent, a_n, dz_sent, dz_n, batch);
  else
    r = ocall_device_update(&status, session.id(), l, a_sent, a_n, dz_sent, dz_n, batch);
  session.counters().products++;
  int rc = device_status(session, l, Phase::update, "update", r, status);
  if (rc != VEIL_OK) return rc;
  for (size_t k = 0; k < rows; ++k) layer.v[k] = Field::sub(layer.v[k], layer.dv[k]);
  for (size_t j = 0; j < cols; ++j) layer.w[j] = Field::sub(layer.w[j], layer.dw[j]);
  layer.proven_max += growth;
  // An honest device's max |M| grows by at most `growth`: track that bound and
  // ask the device for the actual value (an O(n m) scan) only when the bound
  // would force a limb split.
  layer.device_max += growth;
  if (layer.operand_l1 * layer.device_max >= kExact)
    return refresh_device_max(session, l, Phase::update);
  return VEIL_OK;
}

int Training::step(Session& session, const double* x, size_t x_count, const int32_t* labels,
                   size_t batch, veil_step_result_t* result) {
  uint64_t saturated = 0;
  // A worker of a run takes part in a step even with no rows of a short last batch.
  const bool idle = batch == 0 && group_ && x_count == 0;
  int rc = idle ? VEIL_OK : check_batch(session, x, x_count, batch, "train_step", &saturated);
  if (rc != VEIL_OK) return rc;
  const uint32_t classes = layers_.back().m;
  for (size_t i = 0; i < batch; ++i)
    if (labels[i] < 0 || static_cast<uint32_t>(labels[i]) >= classes)
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "train_step: labels[%zu]=%d is outside [0, %u)", i, labels[i], classes);
  // x is in A_0 now (check_batch quantized it).
  return narrow_ ? step_with<float>(session, labels, batch, saturated, result)
                 : step_with<double>(session, labels, batch, saturated, result);
}

// A step is all or nothing. Every product of the step is requested and
// checked, every update's exactness is settled and (in a run of several
// workers) every worker's deltas are received, before the first update is
// sent (backward(l - 1) uses M_{l-1}, which no update of this step has
// touched, so the arithmetic is that of backward-then-update per layer).
// Until then a failure leaves no trace: the fingerprints, bounds, step and
// counters are as before the call, and the batch may be retried. Once an
// update has been sent the device may hold part of the step, so any failure
// ends the session.
template <typename T>
int Training::step_with(Session& session, const int32_t* labels, size_t batch, uint64_t saturated,
                        veil_step_result_t* result) {
  InStep marker(this);
  const Counters before = session.counters();
  math::LossResult loss;
  std::vector<double>& growth = scratch_growth_;
  int rc = VEIL_OK;
  if (batch > 0) {
    rc = run_forward<T>(session, batch, &saturated);
    if (rc == VEIL_OK) rc = run_loss<T>(session, labels, batch, &saturated, &loss);
    if (rc == VEIL_OK) rc = run_backward<T>(session, batch, &saturated);
    for (uint32_t l = 0; rc == VEIL_OK && l < layers_.size(); ++l)
      rc = update_growth<T>(session, l, rows_of(l, batch), &growth[l]);
    for (uint32_t l = 0; rc == VEIL_OK && l < layers_.size(); ++l)
      update_deltas<T>(l, rows_of(l, batch));
  } else {
    for (uint32_t l = 0; l < layers_.size(); ++l) {
      Layer& layer = layers_[l];
      growth[l] = 0;
      std::fill(layer.dv.begin(), layer.dv.end(), 0);
      std::fill(layer.dw.begin(), layer.dw.end(), 0);
      layer.device_has_a = layer.device_has_dz = false;
    }
  }
  if (rc == VEIL_OK && group_) rc = share_updates(session, batch, growth.data());
  if (rc != VEIL_OK) {
    if (!session.aborted()) session.counters() = before;
    return rc;
  }
  for (uint32_t l = static_cast<uint32_t>(layers_.size()); l-- > 0;) {
    rc = apply_update<T>(session, l, rows_of(l, batch), growth[l]);
    if (rc != VEIL_OK) {
      session.abort();
      return rc;
    }
  }
  ++step_;
  session.counters().saturated += saturated;
  result->loss = loss.loss;
  result->correct = static_cast<uint32_t>(loss.correct);
  result->saturated = static_cast<uint32_t>(std::min<uint64_t>(saturated, UINT32_MAX));
  result->step = step_;
  result->checks_passed = session.counters().checks_passed;
  return VEIL_OK;
}

// Loss and its per-example gradient with respect to the last pre-activation,
// quantized into dZ of the top layer. The 1/B of the mean is folded into the
// weight scale (2^-beta), so dZ keeps f_g bits of precision per example.
template <typename T>
int Training::run_loss(Session& session, const int32_t* labels, size_t batch,
                       uint64_t* saturated, math::LossResult* loss) {
  const uint32_t last = static_cast<uint32_t>(layers_.size() - 1);
  const Layer& top = layers_.back();
  const size_t m = top.m;
  const double* z_top = pre_[last].data();
  if (config_.loss == VEIL_LOSS_CROSS_ENTROPY) {
    *loss = math::softmax_cross_entropy(z_top, batch, m, m, labels, grad_real_.data(), m);
  } else {
    grow(&limb_, batch * m);
    for (size_t i = 0; i < batch * m; ++i) limb_[i] = math::activate(top.activation, z_top[i]);
    *loss = math::mse_onehot(limb_.data(), batch, m, m, labels, grad_real_.data(), m);
    for (size_t i = 0; i < batch * m; ++i)
      grad_real_[i] *= math::activation_derivative(top.activation, z_top[i]);
  }
  if (!loss->status.ok())
    return session.fail(VEIL_ERR_INTERNAL, "step %llu: the loss could not be computed (%s)",
                        static_cast<unsigned long long>(step_ + 1),
                        math::fault_name(loss->status.fault));
  T* dz = operands_of<T>().grads[last].data();
  math::OperandStats grad_stats;
  *saturated += math::quantize(grad_real_.data(), batch, m, m, grad_format(), dz, m, &grad_stats)
                    .saturated;
  note_grad_stats(last, grad_stats);
  prepare_grad(last, dz, batch);
  return VEIL_OK;
}

// dA_l = dZ_l M_l^T (checked) from the top layer down, each giving
// dZ_{l-1} = quantize(act'(z_{l-1}) * dA_l) with the bias column dropped.
template <typename T>
int Training::run_backward(Session& session, size_t batch, uint64_t* saturated) {
  Operands<T>& ops = operands_of<T>();
  const int scale = config_.frac_grad + weight_scale();
  for (uint32_t l = static_cast<uint32_t>(layers_.size() - 1); l > 0; --l) {
    int rc = checked_layer(session, l, Phase::backward, ops.grads[l].data(), rows_of(l, batch),
                           scale, grad_real_.data(), saturated);
    if (rc != VEIL_OK) return rc;
    prepare_grad(l - 1, ops.grads[l - 1].data(), rows_of(l - 1, batch));
  }
  return VEIL_OK;
}

int Training::predict(Session& session, const double* x, size_t x_count, size_t batch,
                      double* output, size_t out_count) {
  uint64_t saturated = 0;
  int rc = check_batch(session, x, x_count, batch, "predict", &saturated);
  if (rc != VEIL_OK) return rc;
  const size_t m = layers_.back().m;
  if (out_count != batch * m)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "predict: the output holds %zu values but the batch needs %zu x %zu",
                        out_count, batch, m);
  call_name_ = "predict";
  rc = narrow_ ? run_forward<float>(session, batch, &saturated)
               : run_forward<double>(session, batch, &saturated);
  if (rc != VEIL_OK) return rc;
  session.counters().saturated += saturated;
  model_outputs(config_.loss, layers_.back().activation, pre_.back().data(), batch, m, output);
  return VEIL_OK;
}

int Training::halve_lr(Session& session) {
  call_name_ = "halve_lr";
  for (uint32_t l = 0; l < layers_.size(); ++l)
    if (2 * layers_[l].device_max >= kExact || 2 * layers_[l].proven_max >= kSoundLimit)
      return exactness_refusal(session, l, "halved-weights", 2 * layers_[l].device_max);
  if (lr_exp_ >= 40)
    return session.fail(VEIL_ERR_CONFIG, "the learning rate is already 2^-%d", lr_exp_);
  // Refuse before anything changes: the budget at the doubled weight scale.
  ++lr_exp_;
  int budget = check_budget(session);
  --lr_exp_;
  if (budget != VEIL_OK) return budget;
  for (uint32_t l = 0; l < layers_.size(); ++l) {
    int status = VEIL_OK;
    oe_result_t r = ocall_device_scale(&status, session.id(), l);
    int rc = device_status(session, l, Phase::halve, "scale", r, status);
    if (rc != VEIL_OK) return rc;
    Layer& layer = layers_[l];
    for (uint64_t& x : layer.v) x = Field::add(x, x);
    for (uint64_t& x : layer.w) x = Field::add(x, x);
    layer.proven_max *= 2;
    layer.device_max *= 2;
  }
  ++lr_exp_;
  return VEIL_OK;
}

// Read a layer's weights and check M s = v and M^T t = w before anything is
// believed; on success the actual max |M| replaces the loose provable bound.
int Training::audit(Session& session, uint32_t l, Phase phase, std::vector<double>* weights_out) {
  Layer& layer = layers_[l];
  const size_t rows = layer.n + 1, cols = layer.m;
  std::vector<double> weights(rows * cols);
  int status = VEIL_OK;
  oe_result_t r = ocall_device_download(&status, session.id(), l, weights.data(), weights.size());
  int rc = device_status(session, l, phase, "download", r, status);
  if (rc != VEIL_OK) return rc;
  math::Status st = math::fingerprint_check(weights.data(), rows, cols, cols, layer.s.data(),
                                            layer.v.data(), layer.t.data(), layer.w.data());
  if (!st.ok()) {
    char what[200];
    math::describe_status(st, "the device's weights do not match the fingerprints", what, sizeof what);
    return verification_failure(session, l, Phase::export_check, what);
  }
  session.counters().checks_passed += 2;
  session.counters().audits++;
  layer.proven_max = max_abs(weights.data(), weights.size());
  layer.device_max = layer.proven_max;
  if (weights_out) weights_out->swap(weights);
  return VEIL_OK;
}

int Training::export_weights(Session& session, uint32_t layer, double* weights, size_t count) {
  if (layer >= layers_.size())
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "export: layer %u does not exist (%zu layers)",
                        layer, layers_.size());
  const size_t expected = static_cast<size_t>(layers_[layer].n + 1) * layers_[layer].m;
  if (count != expected)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "export: the buffer holds %zu values; layer %u has %zu", count, layer,
                        expected);
  std::vector<double> m;
  call_name_ = "export";
  int rc = audit(session, layer, Phase::export_check, &m);
  if (rc != VEIL_OK) return rc;
  const int scale = weight_scale();
  for (size_t i = 0; i < count; ++i) weights[i] = std::ldexp(m[i], -scale);
  return VEIL_OK;
}

}  // namespace veil::enclave
