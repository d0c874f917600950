#include "inference.h"

#include "codec.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "math/blinding.h"
#include "math/field.h"
#include "math/freivalds.h"
#include "math/fused.h"
#include "math/parallel.h"
#include "math/status.h"
#include "exactness.h"
#include "platform.h"
#include "seal.h"
#include "session.h"
#include "training.h"

namespace veil::enclave {
namespace {

constexpr uint32_t kMaxBatch = VEIL_LIMIT_MAX_BATCH;
constexpr uint32_t kMaxWidth = VEIL_LIMIT_MAX_WIDTH;
// W_q stays in the enclave (U = R W_q needs it); refuse models beyond this.
constexpr double kMaxModelBytes = 4.0 * 1024 * 1024 * 1024;
// Per-call work buffers (activations, limbs, masks, U) beyond this are refused.
constexpr double kMaxWorkBytes = 2.0 * 1024 * 1024 * 1024;
// The slot is the low half of a PRG stream id.
constexpr uint64_t kMaxSlots = uint64_t{1} << 32;
constexpr uint8_t kMagic[4] = {'v', 'U', 'm', '1'};
constexpr size_t kIvBytes = kSealIvBytes;
constexpr size_t kAdBytes = 8 + kSealedHeaderBytes + 8;
// The check vectors come from their own fresh key, on this stream per layer.
constexpr uint32_t kStreamSecretS = 1;

using math::FieldPb;

struct Header {
  uint32_t layer = 0;
  uint64_t slot = 0;
  uint32_t rows = 0;
  uint32_t cols = 0;
};

void write_header(const Header& h, uint8_t* p) {
  std::memcpy(p, kMagic, 4);
  put_le(p + 4, h.layer, 4);
  put_le(p + 8, h.slot, 8);
  put_le(p + 16, h.rows, 4);
  put_le(p + 20, h.cols, 4);
}

Header read_header(const uint8_t* p) {
  Header h;
  h.layer = static_cast<uint32_t>(get_le(p + 4, 4));
  h.slot = get_le(p + 8, 8);
  h.rows = static_cast<uint32_t>(get_le(p + 16, 4));
  h.cols = static_cast<uint32_t>(get_le(p + 20, 4));
  return h;
}

size_t blob_bytes(size_t rows, size_t cols) {
  return kSealedHeaderBytes + rows * cols * kSealedElementBytes + kSealedTagBytes;
}

// Associated data: the session, the whole header and the blob's length, so a
// blob cannot move to another session, layer, slot or shape.
void make_ad(uint64_t session, const uint8_t* header, size_t blob_len, uint8_t* ad) {
  put_le(ad, session, 8);
  std::memcpy(ad + 8, header, kSealedHeaderBytes);
  put_le(ad + 8 + kSealedHeaderBytes, blob_len, 8);
}

// The IV is (layer, slot): unique per blob under a key that lives one session.
void make_iv(uint32_t layer, uint64_t slot, uint8_t* iv) {
  put_le(iv, layer, 4);
  put_le(iv + 4, slot, 8);
}

// Parse and authenticate the sealed blob at the front of `left` bytes: its
// header, its size and its plaintext. False with `what` said when the host
// altered it (truncated, bad magic or version, impossible shape, bad tag).
bool open_blob(const uint8_t* key, uint64_t session, const uint8_t* blob, size_t left,
               uint64_t max_rows, Header* h, size_t* bytes, std::vector<uint8_t>* plain,
               char* what, size_t what_len) {
  if (left < kSealedHeaderBytes + kSealedTagBytes) {
    std::snprintf(what, what_len, "the sealed U is truncated to %zu bytes", left);
    return false;
  }
  if (std::memcmp(blob, kMagic, sizeof kMagic) != 0) {
    std::snprintf(what, what_len, "the sealed U does not start with the magic and version 'vUm1'");
    return false;
  }
  *h = read_header(blob);
  if (h->rows == 0 || h->rows > max_rows || h->cols == 0 || h->cols > kMaxWidth) {
    std::snprintf(what, what_len, "the sealed U's header claims a %u x %u matrix", h->rows, h->cols);
    return false;
  }
  *bytes = blob_bytes(h->rows, h->cols);
  if (*bytes > left) {
    std::snprintf(what, what_len, "the sealed U claims %zu bytes but %zu remain", *bytes, left);
    return false;
  }
  const size_t cipher_len = *bytes - kSealedHeaderBytes - kSealedTagBytes;
  plain->resize(cipher_len);
  uint8_t ad[kAdBytes], iv[kIvBytes];
  make_iv(h->layer, h->slot, iv);
  make_ad(session, blob, *bytes, ad);
  if (!gcm_decrypt(key, iv, ad, kAdBytes, blob + kSealedHeaderBytes, cipher_len,
                   blob + kSealedHeaderBytes + cipher_len, plain->data())) {
    std::snprintf(what, what_len,
                  "the sealed U (claiming layer %u, slot %llu) failed authentication: it was "
                  "altered, or sealed by another session or enclave instance (a slot opens "
                  "only in the session that sealed it, whose key never leaves it)",
                  h->layer, static_cast<unsigned long long>(h->slot));
    return false;
  }
  return true;
}

}  // namespace

struct Inference::Layer {
  uint32_t n = 0;  // inputs (W_q has n + 1 rows: the bias is last)
  uint32_t m = 0;  // outputs
  math::Activation activation = math::Activation::identity;
  conv::Shape shape;
  std::vector<double> wq;      // W_q = round(W 2^f_w), (n + 1) x m, while it loads
  std::vector<double> panels;  // W_q packed for U = R W_q (private mode)
  std::vector<uint64_t> s;  // secret check vector (m), mod q
  std::vector<uint64_t> v;  // W_q s mod q (n + 1)
};

Inference::~Inference() {
  for (Layer& l : layers_) {
    wipe(l.wq);
    wipe(l.panels);
    wipe(l.s);
    wipe(l.v);
  }
  for (auto& a : acts_) wipe(a);
  for (auto& u : u_) wipe(u);
  wipe(r_);
  wipe(plain_);
  wipe(y_);
  wipe(z_);
  wipe(seal_key_, sizeof seal_key_);
}

int Inference::create(Session& session, const veil_inference_config_t& config,
                      const veil_layer_spec_t* layers, size_t layer_count,
                      std::unique_ptr<Inference>* out) {
  if (config.mode != VEIL_INFERENCE_MODE_VERIFY && config.mode != VEIL_INFERENCE_MODE_PRIVATE)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "unknown inference mode %d (0 verify, 1 private)",
                        config.mode);
  // The model checks are training's: the same layers, losses and activation formats.
  veil_train_config_t model{};
  model.layer_count = config.layer_count;
  model.loss = config.loss;
  model.frac_act = config.frac_act;
  model.frac_grad = 12;
  model.max_batch = 1;
  model.act_clip = config.act_clip;
  model.grad_clip = 1;
  model.weight_max = 1;
  int rc = validate_model(session, model, layers, layer_count);
  if (rc != VEIL_OK) return rc;
  if (config.frac_weights < 0 || config.frac_weights > 24)
    return session.fail(VEIL_ERR_CONFIG, "frac_weights=%d is outside [0, 24]", config.frac_weights);
  double bytes = 0;
  for (size_t i = 0; i < layer_count; ++i)
    bytes += 8.0 * (layers[i].inputs + 1.0) * layers[i].outputs;
  if (bytes > kMaxModelBytes)
    return session.fail(VEIL_ERR_RESOURCE,
                        "the quantized model needs %.0f MiB of enclave memory; the limit is %.0f "
                        "MiB: narrow the layers",
                        bytes / 1048576.0, kMaxModelBytes / 1048576.0);

  // Private fine-tuning: layer 0 sees the data, so it must stay frozen (masked on the device).
  if (config.head_layers >= layer_count)
    return session.fail(VEIL_ERR_CONFIG,
                        "head_layers=%u of %zu layers: layer 0 would train in the enclave on the "
                        "raw data at O(B n m) per step; freeze at least the first layer",
                        config.head_layers, layer_count);
  if (config.head_layers > 0 && !(config.head_lr > 0 && config.head_lr < 1e6))
    return session.fail(VEIL_ERR_CONFIG, "head_lr=%g: the head's learning rate must be in (0, 1e6)",
                        config.head_lr);
  const size_t frozen = layer_count - config.head_layers;
  for (size_t i = config.head_layers > 0 ? frozen - 1 : layer_count; i < layer_count; ++i)
    if (layers[i].kind != VEIL_LAYER_KIND_DENSE)
      return session.fail(VEIL_ERR_CONFIG,
                          "layer %zu is a convolution: the trained head and the frozen layer "
                          "before it must be dense",
                          i);
  std::unique_ptr<Inference> t(new Inference());
  t->config_ = config;
  t->session_id_ = session.id();
  shape_layers(layers, frozen, &t->layers_);
  for (size_t i = frozen; i < layer_count; ++i)
    t->head_.layers().push_back({layers[i].inputs, layers[i].outputs,
                                 static_cast<math::Activation>(layers[i].activation), {}});
  t->acts_.resize(layer_count);
  t->u_.resize(layer_count);

  // Three fresh keys that never leave the enclave: check vectors, masks, sealing.
  math::PrgKey secret_key, mask_key;
  bool keys = secure_random(secret_key.bytes, sizeof secret_key.bytes) &&
              secure_random(mask_key.bytes, sizeof mask_key.bytes) &&
              secure_random(t->seal_key_, sizeof t->seal_key_);
  math::Prg secrets;
  bool prgs = keys && secrets.init(secret_key).ok() && t->masks_.init(mask_key).ok();
  wipe(secret_key.bytes, sizeof secret_key.bytes);
  wipe(mask_key.bytes, sizeof mask_key.bytes);
  if (!keys) return session.fail(VEIL_ERR_INTERNAL, "the platform's random source failed");
  if (!prgs) return session.fail(VEIL_ERR_INTERNAL, "the enclave's CSPRNG failed to start");
  for (uint32_t li = 0; li < t->layers_.size(); ++li) {
    Layer& l = t->layers_[li];
    l.s.resize(l.m);
    if (!secrets.uniform_mod_q(math::prg_stream(li, kStreamSecretS), l.s.data(), l.m).ok())
      return session.fail(VEIL_ERR_INTERNAL, "the enclave's CSPRNG failed");
  }
  *out = std::move(t);
  return VEIL_OK;
}

bool Inference::ready() const { return loaded_ == layer_count(); }

size_t Inference::layer_count() const { return layers_.size() + head_.layers().size(); }

size_t Inference::classes() const {
  return head_.layers().empty() ? layers_.back().m : head_.layers().back().m;
}

size_t Inference::rows_of(uint32_t l, size_t batch) const {
  return batch * layers_[l].shape.positions();
}

int Inference::require_ready(Session& session, const char* call) const {
  if (ready()) return VEIL_OK;
  return session.fail(VEIL_ERR_ORDER, "%s: %zu of %zu layers are loaded; load every layer first",
                      call, loaded_, layer_count());
}

// The exactness budget (docs/arithmetic.md 3 and 9), from the largest column
// L1 norm of W_q and the largest |X_q| the enclave can produce (clipped
// activations, or the bias column 2^f_a).
int Inference::check_budget(Session& session, uint32_t l, double col_l1) const {
  const double act_max =
      std::max(math::fixed_limit(act_format()), std::ldexp(1.0, config_.frac_act));
  const double y_max = act_max * col_l1;
  if (is_private()) {
    if (!math::blind_limbs_exact(col_l1))
      return session.fail(VEIL_ERR_CONFIG,
                          "layer %u: a column of W_q has L1 norm 2^%.1f, so a 24-bit limb product "
                          "could reach 2^%.1f, beyond the exact float64 range 2^53; lower "
                          "frac_weights (now %d) or the layer's weights",
                          l, std::log2(col_l1), std::log2(col_l1) + 24, config_.frac_weights);
    if (!math::blind_result_recoverable(act_max, col_l1))
      return session.fail(VEIL_ERR_CONFIG,
                          "layer %u: |X_q W_q| could reach 2^%.1f, not below p_b/2 ~ 2^47, so "
                          "unmasking would be ambiguous; lower frac_weights (now %d), frac_act "
                          "(now %d) or act_clip (now %g)",
                          l, std::log2(y_max), config_.frac_weights, config_.frac_act,
                          config_.act_clip);
  } else if (!(y_max < kExact)) {
    return session.fail(VEIL_ERR_CONFIG,
                        "layer %u: |X_q W_q| could reach 2^%.1f, beyond the exact float64 range "
                        "2^53; lower frac_weights (now %d), frac_act (now %d) or act_clip (now %g)",
                        l, std::log2(y_max), config_.frac_weights, config_.frac_act,
                        config_.act_clip);
  }
  return VEIL_OK;
}

// The order and shape checks every layer's rows pass, frozen or not.
int Inference::load_rows(Session& session, uint32_t layer, const double* weights, size_t count,
                         uint32_t* rows) {
  if (ready())
    return session.fail(VEIL_ERR_ORDER, "load_layer: all %zu layers are already loaded",
                        layer_count());
  if (layer != loaded_)
    return session.fail(VEIL_ERR_ORDER,
                        "load_layer: expected layer %zu, got layer %u (layers load in order, once "
                        "each)",
                        loaded_, layer);
  const bool frozen = layer < layers_.size();
  const uint32_t n = frozen ? layers_[layer].n : head_.layers()[layer - layers_.size()].n;
  const uint32_t m = frozen ? layers_[layer].m : head_.layers()[layer - layers_.size()].m;
  const size_t total = n + 1, cols = m;
  const uint32_t first_row = rows_loaded_;
  if (count == 0 || count % cols != 0 || count / cols > total - first_row)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "load_layer: %zu values for layer %u, which still needs %zu rows of %zu "
                        "values ((%u + 1) x %u in all)",
                        count, layer, total - first_row, cols, n, m);
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(weights[i]))
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "load_layer: layer %u, weights[%zu, %zu] is %s; weights must be finite",
                          layer, first_row + i / cols, i % cols,
                          std::isnan(weights[i]) ? "NaN" : "infinite");
  *rows = static_cast<uint32_t>(count / cols);
  return VEIL_OK;
}

int Inference::load_layer(Session& session, uint32_t layer, const double* weights,
                          size_t count) {
  uint32_t rows = 0;
  int rc = load_rows(session, layer, weights, count, &rows);
  if (rc != VEIL_OK) return rc;
  const uint32_t first_row = rows_loaded_;
  if (layer >= layers_.size()) {  // a head layer stays in the enclave, in real units
    Head::Layer& h = head_.layers()[layer - layers_.size()];
    h.w.resize(static_cast<size_t>(h.n + 1) * h.m);
    std::copy(weights, weights + count, h.w.begin() + static_cast<size_t>(first_row) * h.m);
    rows_loaded_ += rows;
    if (rows_loaded_ == h.n + 1) rows_loaded_ = 0, ++loaded_;
    return VEIL_OK;
  }
  Layer& l = layers_[layer];
  const size_t total = l.n + 1, cols = l.m;
  // W_q = round(W 2^f_w) for every row, the bias row too: with the input's bias
  // column at 2^f_a the bias enters Y at scale f_a + f_w like every other term.
  // The clip only keeps values exact; anything near it fails the budget below.
  if (first_row == 0) l.wq.resize(total * cols);
  const math::FixedFormat w_format{config_.frac_weights,
                                   std::ldexp(1.0, 52 - config_.frac_weights)};
  math::PassResult q = math::quantize(weights, rows, cols, cols, w_format,
                                      l.wq.data() + first_row * cols, cols);
  if (!q.status.ok())
    return session.fail(VEIL_ERR_INTERNAL, "load_layer: quantizing layer %u failed (%s)", layer,
                        math::fault_name(q.status.fault));
  rows_loaded_ += rows;
  if (rows_loaded_ < total) return VEIL_OK;
  rows_loaded_ = 0;  // a refused layer loads again from its first row
  std::vector<double> col_sums;
  const double col_l1 = max_col_l1(l.wq.data(), total, cols, col_sums);
  rc = check_budget(session, layer, col_l1);
  if (rc != VEIL_OK) {
    wipe(l.wq);
    return rc;
  }
  int status = VEIL_OK;
  oe_result_t r = ocall_device_upload(&status, session.id(), layer, l.wq.data(), total, cols,
                                      total * cols);
  if (r != OE_OK || status != VEIL_OK) {
    // The device may hold part of a matrix now: nothing it computes can be vouched for.
    session.abort();
    if (r != OE_OK)
      return session.fail(VEIL_ERR_DEVICE, "layer %u, phase upload: the upload ocall failed: %s",
                          layer, oe_result_str(r));
    return session.fail(VEIL_ERR_DEVICE, "layer %u, phase upload: the device failed", layer);
  }
  l.v.resize(total);
  math::Status st = math::matvec_mod(l.wq.data(), total, cols, cols, l.s.data(), l.v.data());
  // Private mode keeps W_q only as the correction GEMM's packed panels.
  if (st.ok() && is_private()) {
    l.panels.resize(math::correction_panel_doubles(total, cols));
    st = math::pack_correction_weights(l.wq.data(), total, cols, cols, l.panels.data());
  }
  l.wq = std::vector<double>();
  if (!st.ok())
    return session.fail(VEIL_ERR_INTERNAL, "load_layer: W_q s or packing of layer %u failed (%s)",
                        layer, math::fault_name(st.fault));
  ++loaded_;
  return VEIL_OK;
}

bool Inference::seal(uint32_t l, uint64_t slot, uint32_t rows, const std::vector<uint64_t>& u,
                     uint8_t* out) {
  const uint32_t cols = layers_[l].m;
  const size_t n = static_cast<size_t>(rows) * cols;
  plain_.resize(n * kSealedElementBytes);
  for (size_t i = 0; i < n; ++i) put_le(plain_.data() + i * kSealedElementBytes, u[i], 6);
  write_header(Header{l, slot, rows, cols}, out);
  uint8_t ad[kAdBytes], iv[kIvBytes];
  make_iv(l, slot, iv);
  make_ad(session_id_, out, blob_bytes(rows, cols), ad);
  const bool ok = gcm_encrypt(seal_key_, iv, ad, kAdBytes, plain_.data(), plain_.size(),
                           out + kSealedHeaderBytes,
                           out + kSealedHeaderBytes + plain_.size());
  wipe(plain_);
  return ok;
}

int Inference::slot_size(Session& session, uint32_t rows, uint64_t* size) {
  if (rows == 0 || rows > kMaxBatch)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "slot size: rows=%u is outside [1, %u]", rows,
                        kMaxBatch);
  *size = 0;
  for (const Layer& l : layers_) *size += blob_bytes(rows * l.shape.positions(), l.m);
  return VEIL_OK;
}

int Inference::precompute(Session& session, uint32_t rows, uint8_t* sealed, size_t capacity) {
  if (!is_private())
    return session.fail(VEIL_ERR_ORDER,
                        "precompute: this session runs verify-mode inference, which needs no masks");
  int rc = require_ready(session, "precompute");
  if (rc != VEIL_OK) return rc;
  uint64_t needed = 0;
  rc = slot_size(session, rows, &needed);
  if (rc != VEIL_OK) return rc;
  size_t widest = 0;
  for (const Layer& l : layers_)
    widest = std::max<size_t>(widest, l.shape.positions() * std::max(l.n + 1, l.m));
  if (16.0 * rows * widest > kMaxWorkBytes)
    return session.fail(VEIL_ERR_RESOURCE,
                        "precompute: a slot of %u rows needs %.0f MiB of enclave work memory; the "
                        "limit is %.0f MiB: lower batch_size",
                        rows, 16.0 * rows * widest / 1048576.0, kMaxWorkBytes / 1048576.0);
  if (capacity != needed)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "precompute: the buffer holds %zu bytes; a slot of %u rows needs %llu",
                        capacity, rows, static_cast<unsigned long long>(needed));
  if (sealed_until_ >= kMaxSlots)
    return session.fail(VEIL_ERR_RESOURCE,
                        "precompute: this session has sealed all %llu slots it can address; open a "
                        "new session",
                        static_cast<unsigned long long>(kMaxSlots));
  const uint64_t slot = sealed_until_;
  std::vector<uint64_t> u;
  size_t off = 0;
  int status = VEIL_OK;
  for (uint32_t li = 0; li < layers_.size() && status == VEIL_OK; ++li) {
    const Layer& l = layers_[li];
    const size_t in = l.n + 1, u_rows = rows_of(li, rows), count = u_rows * in;
    // R = PRG(mask key, (layer, slot)): regenerated online, never stored or sealed.
    r_.resize(count);
    math::Status st =
        masks_.uniform_mod_pb(math::prg_stream(li, static_cast<uint32_t>(slot)), r_.data(), count);
    u.resize(u_rows * l.m);
    if (st.ok()) st = correction(l, u_rows, u.data());
    wipe(r_);
    if (!st.ok())
      status = session.fail(VEIL_ERR_INTERNAL, "precompute: U of layer %u failed (%s)", li,
                            math::fault_name(st.fault));
    else if (!seal(li, slot, static_cast<uint32_t>(u_rows), u, sealed + off))
      status = session.fail(VEIL_ERR_INTERNAL, "precompute: sealing U of layer %u failed", li);
    off += blob_bytes(u_rows, l.m);
  }
  wipe(u);
  // The slot is spent even if a layer failed: a retry must not seal (layer, slot)
  // again under the same GCM IV. Only the enclave's own crypto can fail here,
  // and then it can vouch for nothing more.
  ++sealed_until_;
  if (status != VEIL_OK) session.abort();
  return status;
}

// U = R W_q mod p_b for the R in r_, in blocks of R's rows run by parallel_for
// on whatever threads the session has lent (math/parallel.h). The GEMM is exact,
// so U is the same for every partition; blocks of at least 32 rows keep its
// tiles full.
math::Status Inference::correction(const Layer& l, size_t rows, uint64_t* u) {
  const size_t in = l.n + 1;
  const math::RowBlocks blocks = math::row_blocks(rows, in, 32);
  gemm_work_.resize(blocks.count);
  for (auto& work : gemm_work_) work.resize(math::correction_work_doubles(blocks.per_block, in));
  math::Status status[math::kMaxBlocks];
  auto block = [&](size_t b) {
    const size_t first = blocks.begin(b);
    status[b] = math::blind_correction(r_.data() + first * in, blocks.end(b) - first, in, in,
                                       l.panels.data(), l.m, u + first * l.m, l.m,
                                       gemm_work_[b].data());
  };
  math::parallel_for(blocks.count, block);
  for (auto& work : gemm_work_) wipe(work);  // R's limbs
  for (size_t b = 0; b < blocks.count; ++b)
    if (!status[b].ok()) return status[b];
  return math::Status::success();
}

int Inference::check_input(Session& session, const double* x, size_t x_count, size_t batch,
                           size_t out_count) {
  const conv::Shape& first = layers_.front().shape;
  const size_t features = first.windowed ? first.tensor_size() : layers_.front().n;
  const size_t classes = this->classes();
  if (batch == 0) return session.fail(VEIL_ERR_INVALID_ARGUMENT, "predict: the batch is empty");
  if (batch > kMaxBatch)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "predict: a batch of %zu rows exceeds %u",
                        batch, kMaxBatch);
  double work = 0;
  size_t widest = 0;
  for (const Layer& l : layers_) {
    work += 8.0 * batch * l.shape.positions() * (l.n + 1.0 + l.m);
    widest = std::max<size_t>(widest, l.shape.positions() * std::max(l.n + 1, l.m));
  }
  work += 8.0 * batch * (widest * 6 + features);
  if (work > kMaxWorkBytes)
    return session.fail(VEIL_ERR_RESOURCE,
                        "predict: a batch of %zu rows needs %.0f MiB of enclave work memory; the "
                        "limit is %.0f MiB: send smaller batches",
                        batch, work / 1048576.0, kMaxWorkBytes / 1048576.0);
  if (x_count != batch * features)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "predict: x holds %zu values but the batch is %zu x %zu", x_count, batch,
                        features);
  if (out_count != batch * classes)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "predict: the output holds %zu values but the batch needs %zu x %zu",
                        out_count, batch, classes);
  for (size_t i = 0; i < x_count; ++i)
    if (!std::isfinite(x[i]))
      return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                          "predict: x[%zu, %zu] is %s; inputs must be finite", i / features,
                          i % features, std::isnan(x[i]) ? "NaN" : "infinite");
  return VEIL_OK;
}

// A sealed blob that does not authenticate (or cannot be parsed) is data the
// host altered: an integrity failure, so the session ends.
int Inference::tampered(Session& session, uint32_t l, const char* what) {
  return session.fail(VEIL_ERR_VERIFICATION,
                      "integrity check failed: layer %u, phase unseal, batch %llu: %s", l,
                      static_cast<unsigned long long>(batches_ + 1), what);
}

// Authenticate every layer's sealed U of one slot and decrypt the rows the
// batch needs into u_. Authentic but wrong (reused, out of order, missing)
// slots are refused without ending the session: no mask has been used yet,
// and the enclave still expects the same slot.
int Inference::open_slot(Session& session, const uint8_t* sealed, size_t size, size_t batch,
                         uint64_t* slot_out) {
  char what[240];
  size_t off = 0;
  uint64_t slot = 0;
  uint32_t rows = 0;
  for (uint32_t li = 0; li < layers_.size(); ++li) {
    if (off == size)
      return session.fail(VEIL_ERR_ORDER,
                          "predict: the sealed masks hold %u of %zu layers; the sealed U of layer "
                          "%u is missing",
                          li, layers_.size(), li);
    Header h;
    size_t bytes = 0;
    const size_t positions = layers_[li].shape.positions();
    if (!open_blob(seal_key_, session_id_, sealed + off, size - off, kMaxBatch * positions, &h,
                   &bytes, &plain_, what, sizeof what))
      return tampered(session, li, what);
    // From here on the header is the enclave's own.
    int refusal = VEIL_OK;
    if (h.layer != li)
      refusal = session.fail(VEIL_ERR_ORDER, "predict: expected the sealed U of layer %u, got layer %u",
                             li, h.layer);
    else if (li > 0 && h.slot != slot)
      refusal = session.fail(VEIL_ERR_ORDER,
                             "predict: the sealed masks mix slot %llu (layer 0) and slot %llu "
                             "(layer %u)",
                             static_cast<unsigned long long>(slot),
                             static_cast<unsigned long long>(h.slot), li);
    else if (h.cols != layers_[li].m || h.rows % positions != 0 ||
             (li > 0 && h.rows / positions != rows))
      refusal = session.fail(VEIL_ERR_INTERNAL, "predict: an authentic sealed U has the wrong shape");
    if (refusal != VEIL_OK) return refusal;
    slot = h.slot;
    rows = static_cast<uint32_t>(h.rows / positions);  // the slot's batch rows
    const size_t used = std::min<size_t>(batch, rows) * positions * h.cols;
    u_[li].resize(used);
    for (size_t i = 0; i < used; ++i)
      u_[li][i] = get_le(plain_.data() + i * kSealedElementBytes, kSealedElementBytes);
    off += bytes;
  }
  if (off != size) {
    std::snprintf(what, sizeof what, "%zu bytes follow the last layer's sealed U", size - off);
    return tampered(session, static_cast<uint32_t>(layers_.size() - 1), what);
  }
  if (slot < next_slot_)
    return session.fail(VEIL_ERR_ORDER,
                        "predict: slot %llu was already used; each slot masks one batch only",
                        static_cast<unsigned long long>(slot));
  if (slot > next_slot_)
    return session.fail(VEIL_ERR_ORDER,
                        "predict: expected slot %llu, got slot %llu; slots are used in order and "
                        "none may be skipped",
                        static_cast<unsigned long long>(next_slot_),
                        static_cast<unsigned long long>(slot));
  if (batch > rows)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "predict: slot %llu holds masks for batches of up to %u rows; this batch "
                        "has %zu",
                        static_cast<unsigned long long>(slot), rows, batch);
  // The slot is spent from now on, whatever happens next: its mask is about to
  // reach the device.
  next_slot_ = slot + 1;
  *slot_out = slot;
  return VEIL_OK;
}

int Inference::verification_failure(Session& session, uint32_t l, const char* what) {
  char slot[32] = "";
  if (is_private())
    std::snprintf(slot, sizeof slot, " (slot %llu)", static_cast<unsigned long long>(current_slot_));
  // A fine-tuning step names its step; a prediction its batch.
  const bool step = in_train_step_;
  return session.fail(VEIL_ERR_VERIFICATION,
                      "integrity check failed: layer %u, phase forward, %s %llu%s: %s", l,
                      step ? "train step" : "batch",
                      static_cast<unsigned long long>(step ? head_steps_ + 1 : batches_), slot,
                      what);
}

int Inference::device_product(Session& session, uint32_t l, const double* x, size_t batch,
                              double* y) {
  const Layer& layer = layers_[l];
  const size_t count = batch * layer.m, sent_count = batch * (layer.n + 1);
  const double* sent = sent_.lend(x, sent_count);
  if (sent == nullptr || !result_.reserve<double>(count))
    return session.fail(VEIL_ERR_RESOURCE, "layer %u: the host gave no memory for the product", l);
  int status = VEIL_OK;
  oe_result_t r = ocall_device_forward(&status, session.id(), l, sent, sent_count, batch,
                                       result_.data<double>(), count, /*keep=*/0);
  session.counters().products++;
  // The checks read a product more than once: they get an enclave copy.
  if (r == OE_OK && status == VEIL_OK) result_.copy_to(y, count * sizeof(double));
  if (r == OE_OK && status == VEIL_OK) return VEIL_OK;
  if (r != OE_OK)
    return session.fail(VEIL_ERR_DEVICE, "layer %u, phase forward, batch %llu: forward failed: %s",
                        l, static_cast<unsigned long long>(batches_), oe_result_str(r));
  return session.fail(VEIL_ERR_DEVICE, "layer %u, phase forward, batch %llu: forward: the device failed",
                      l, static_cast<unsigned long long>(batches_));
}

// Private mode: X~ = X_q + R mod p_b goes to the device as two 24-bit limbs;
// each limb product is range-checked and checked mod q on its own, then
// Y = centre(Y~_lo + 2^24 Y~_hi - U mod p_b) lands in y_.
int Inference::checked_private(Session& session, uint32_t l, size_t batch, uint64_t slot) {
  const Layer& layer = layers_[l];
  const size_t in = layer.n + 1, m = layer.m, count = batch * in;
  r_.resize(count);
  math::Status st =
      masks_.uniform_mod_pb(math::prg_stream(l, static_cast<uint32_t>(slot)), r_.data(), count);
  lo_.resize(count);
  hi_.resize(count);
  if (st.ok())
    st = math::blind(acts_[l].data(), batch, in, in, r_.data(), in, lo_.data(), hi_.data(), in);
  if (!st.ok())
    return session.fail(VEIL_ERR_INTERNAL, "layer %u: masking failed (%s)", l,
                        math::fault_name(st.fault));
  y_lo_.resize(batch * m);
  y_hi_.resize(batch * m);
  const double* limbs[2] = {lo_.data(), hi_.data()};
  double* products[2] = {y_lo_.data(), y_hi_.data()};
  const char* names[2] = {"low", "high"};
  for (int k = 0; k < 2; ++k) {
    int rc = device_product(session, l, limbs[k], batch, products[k]);
    if (rc != VEIL_OK) return rc;
    // Nothing the device returned is used before it passes its check: Y~ s = X~ (W_q s).
    expected_.resize(batch);
    st = math::matvec_mod(limbs[k], batch, in, in, layer.v.data(), expected_.data());
    math::ForwardArgs f;
    f.z = products[k];
    f.rows = batch;
    f.cols = f.ld_z = m;
    f.s = layer.s.data();
    f.expected = expected_.data();
    if (st.ok()) st = math::fused_forward(f).status;
    if (!st.ok()) {
      char what[200], label[80];
      std::snprintf(label, sizeof label, "the device's product of the %s limb failed its check",
                    names[k]);
      math::describe_status(st, label, what, sizeof what);
      if (st.fault == math::Fault::invalid_argument)
        return session.fail(VEIL_ERR_INTERNAL, "layer %u: %s", l, what);
      return verification_failure(session, l, what);
    }
    session.counters().checks_passed++;
  }
  y_.resize(batch * m);
  st = math::unblind(y_lo_.data(), y_hi_.data(), batch, m, m, u_[l].data(), m, y_.data(), m);
  if (!st.ok())
    return session.fail(VEIL_ERR_INTERNAL, "layer %u: unmasking failed (%s)", l,
                        math::fault_name(st.fault));
  return VEIL_OK;
}

// Verify mode: the device sees X_q; its product lands in y_ and the row sums
// it must match in expected_ (compared by the fused pass).
int Inference::checked_verify(Session& session, uint32_t l, size_t batch) {
  const Layer& layer = layers_[l];
  const size_t in = layer.n + 1;
  y_.resize(batch * layer.m);
  int rc = device_product(session, l, acts_[l].data(), batch, y_.data());
  if (rc != VEIL_OK) return rc;
  expected_.resize(batch);
  math::Status st = math::matvec_mod(acts_[l].data(), batch, in, in, layer.v.data(),
                                     expected_.data());
  if (!st.ok())
    return session.fail(VEIL_ERR_INTERNAL, "layer %u: X_q v failed (%s)", l,
                        math::fault_name(st.fault));
  return VEIL_OK;
}

// Y (exact integers at scale 2^(f_a + f_w)) becomes the next layer's X_q, or
// the last layer's real z: the same fused pass in both modes, so private and
// verify outputs are bit-identical. expected (verify mode) makes the pass the
// Freivalds check too.
int Inference::finish_layer(Session& session, uint32_t l, size_t batch, const uint64_t* expected,
                            uint64_t* saturated) {
  const Layer& layer = layers_[l];
  const bool last = l + 1 == layers_.size() && head_.layers().empty();
  const bool gathered = l + 1 < layers_.size() && layers_[l + 1].shape.windowed;
  math::ForwardArgs f;
  f.z = y_.data();
  f.rows = batch;
  f.cols = layer.m;
  f.ld_z = layer.m;
  f.scale = config_.frac_act + config_.frac_weights;
  f.s = layer.s.data();
  f.expected = expected;
  f.act = layer.activation;
  if (last || gathered) {  // real z: the loss's, or the convolution layout's (conv.h)
    z_.resize(batch * layer.m);
    f.z_real = z_.data();
    f.ld_z_real = layer.m;
  } else {
    acts_[l + 1].resize(batch * (layer.m + 1));
    f.a_next = acts_[l + 1].data();
    f.ld_a_next = layer.m + 1;
    f.a_format = act_format();
  }
  math::PassResult pass = math::fused_forward(f);
  if (!pass.status.ok()) {
    char what[200];
    if (pass.status.fault == math::Fault::invalid_argument) {
      math::describe_status(pass.status, "the fused pass refused its arguments", what, sizeof what);
      return session.fail(VEIL_ERR_INTERNAL, "layer %u: %s", l, what);
    }
    math::describe_status(pass.status, "the device's product failed its check", what, sizeof what);
    return verification_failure(session, l, what);
  }
  if (expected != nullptr) session.counters().checks_passed++;
  *saturated += pass.saturated;
  if (gathered) {
    const Layer& next = layers_[l + 1];
    const size_t examples = batch / layer.shape.positions();
    acts_[l + 1].resize(rows_of(l + 1, examples) * (next.n + 1));
    pool_arg_.resize(examples * layer.shape.pooled() * layer.m);
    *saturated += conv::next_operand(layer.shape, next.shape, layer.activation, layer.m,
                                     z_.data(), examples, act_format(), &real_, &tensor_,
                                     pool_arg_.data(), acts_[l + 1].data());
  } else if (!last) {
    const double one = std::ldexp(1.0, config_.frac_act);
    double* next = acts_[l + 1].data();
    for (size_t i = 0; i < batch; ++i) next[i * (layer.m + 1) + layer.m] = one;  // bias column
  }
  return VEIL_OK;
}

// The frozen layers on one batch: input checks, the slot (private mode), then
// each layer's checked product and fused pass. The head's input, or the last
// layer's z, is left in acts_ or z_.
int Inference::run_frozen(Session& session, const double* x, size_t x_count, size_t batch,
                          const uint8_t* sealed, size_t sealed_size, uint64_t* saturated) {
  uint64_t slot = 0;
  int rc = VEIL_OK;
  if (is_private()) {
    if (sealed_size == 0)
      return session.fail(VEIL_ERR_ORDER,
                          "predict: private inference needs the sealed U of slot %llu; call "
                          "precompute first",
                          static_cast<unsigned long long>(next_slot_));
    rc = open_slot(session, sealed, sealed_size, batch, &slot);
    if (rc != VEIL_OK) return rc;
  } else if (sealed_size != 0) {
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "predict: verify-mode inference takes no sealed masks (got %zu bytes)",
                        sealed_size);
  }
  current_slot_ = slot;
  ++batches_;
  const size_t n0 = layers_.front().n;
  acts_[0].resize(rows_of(0, batch) * (n0 + 1));
  if (layers_.front().shape.windowed) {
    *saturated = conv::first_operand(layers_.front().shape, x, batch, act_format(), &tensor_,
                                     nullptr, acts_[0].data());
  } else {
    *saturated = math::quantize(x, batch, n0, n0, act_format(), acts_[0].data(), n0 + 1).saturated;
    const double one = std::ldexp(1.0, config_.frac_act);
    for (size_t i = 0; i < batch; ++i) acts_[0][i * (n0 + 1) + n0] = one;
  }
  for (uint32_t l = 0; l < layers_.size() && rc == VEIL_OK; ++l) {
    const size_t rows = rows_of(l, batch);
    if (is_private()) {
      rc = checked_private(session, l, rows, slot);
      if (rc == VEIL_OK) rc = finish_layer(session, l, rows, nullptr, saturated);
    } else {
      rc = checked_verify(session, l, rows);
      if (rc == VEIL_OK) rc = finish_layer(session, l, rows, expected_.data(), saturated);
    }
  }
  if (rc == VEIL_OK) session.counters().saturated += *saturated;
  return rc;
}

int Inference::predict(Session& session, const double* x, size_t x_count, size_t batch,
                       const uint8_t* sealed, size_t sealed_size, double* output,
                       size_t out_count) {
  int rc = require_ready(session, "predict");
  if (rc == VEIL_OK) rc = check_input(session, x, x_count, batch, out_count);
  uint64_t saturated = 0;
  if (rc == VEIL_OK) rc = run_frozen(session, x, x_count, batch, sealed, sealed_size, &saturated);
  if (rc != VEIL_OK) return rc;
  if (head_.layers().empty()) {
    model_outputs(config_.loss, layers_.back().activation, z_.data(), batch, layers_.back().m,
                  output);
  } else {
    const double* z = head_.forward(acts_[layers_.size()].data(), batch, config_.frac_act);
    model_outputs(config_.loss, head_.layers().back().activation, z, batch, classes(), output);
  }
  return VEIL_OK;
}

void Inference::status(veil_inference_status_t* out) const {
  out->mode = config_.mode;
  out->layer_count = static_cast<uint32_t>(layer_count());
  out->layers_loaded = static_cast<uint32_t>(loaded_);
  out->batches = batches_;
  out->next_slot = next_slot_;
  out->slots_sealed = sealed_until_;
}

}  // namespace veil::enclave
