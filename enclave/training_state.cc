// Sealed checkpoints of verify training: the state codec.
//
// Plaintext, every field little-endian (codec.h), sealed with AES-256-GCM:
//   "VEILCKPT"  u32 version (3)
//   config:     u32 layer_count, i32 loss, frac_act, frac_grad, lr_exp,
//               u32 max_batch, u64 seed, f64 act_clip, grad_clip, weight_max
//   progress:   u64 step, i32 lr_exp, i32 batch_exp,
//               u64 checks_passed, products, saturated
//   per layer:  f64 device_max, proven_max, then mod-q vectors as u64:
//               s (m), t (n+1), v (n+1), w (m)
// Associated data: "VEILCKPT", the version and every layer's (inputs, outputs,
// activation) as u32, u32, i32, so a checkpoint of another model or format
// does not open at all.
#include <cmath>
#include <cstring>

#include "codec.h"
#include "platform.h"
#include "seal.h"
#include "training.h"

namespace veil::enclave {
namespace {

constexpr char kMagic[8] = {'V', 'E', 'I', 'L', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 3;
constexpr size_t kConfigBytes = 4 * 6 + 8 + 3 * 8;
constexpr size_t kProgressBytes = 8 + 4 + 4 + 3 * 8;

std::vector<uint8_t> associated_data(const veil_layer_spec_t* layers, size_t count) {
  std::vector<uint8_t> ad;
  Encoder e(&ad);
  e.bytes(kMagic, sizeof kMagic);
  e.u32(kVersion);
  for (size_t i = 0; i < count; ++i) {
    e.u32(layers[i].inputs);
    e.u32(layers[i].outputs);
    e.i32(layers[i].activation);
    if (layers[i].kind == VEIL_LAYER_KIND_DENSE) continue;  // dense geometry is all 0
    e.i32(layers[i].kind);
    for (uint32_t field : {layers[i].channels, layers[i].height, layers[i].width,
                           layers[i].kernel, layers[i].stride, layers[i].padding,
                           static_cast<uint32_t>(layers[i].pool), layers[i].pool_size})
      e.u32(field);
  }
  return ad;
}

void encode_config(Encoder& e, const veil_train_config_t& c) {
  e.u32(c.layer_count);
  e.i32(c.loss);
  e.i32(c.frac_act);
  e.i32(c.frac_grad);
  e.i32(c.lr_exp);
  e.u32(c.max_batch);
  e.u64(c.seed);
  e.f64(c.act_clip);
  e.f64(c.grad_clip);
  e.f64(c.weight_max);
}

veil_train_config_t decode_config(Decoder& d) {
  veil_train_config_t c{};
  c.layer_count = d.u32();
  c.loss = d.i32();
  c.frac_act = d.i32();
  c.frac_grad = d.i32();
  c.lr_exp = d.i32();
  c.max_batch = d.u32();
  c.seed = d.u64();
  c.act_clip = d.f64();
  c.grad_clip = d.f64();
  c.weight_max = d.f64();
  return c;
}

bool same_config(const veil_train_config_t& a, const veil_train_config_t& b) {
  return a.layer_count == b.layer_count && a.loss == b.loss && a.frac_act == b.frac_act &&
         a.frac_grad == b.frac_grad && a.lr_exp == b.lr_exp && a.max_batch == b.max_batch &&
         a.seed == b.seed && a.act_clip == b.act_clip && a.grad_clip == b.grad_clip &&
         a.weight_max == b.weight_max;
}

// The caller's 32-byte key, or the platform's sealing key when none is given.
int sealing_key(Session& session, const uint8_t* key, size_t key_len, uint8_t out[kSealKeyBytes]) {
  if (key_len == kSealKeyBytes) {
    std::memcpy(out, key, kSealKeyBytes);
    return VEIL_OK;
  }
  if (key_len != 0)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "a sealing key is %zu bytes, got %zu",
                        kSealKeyBytes, key_len);
  uint8_t* platform_key = nullptr;
  size_t platform_len = 0;
  oe_result_t r = oe_get_seal_key_by_policy(OE_SEAL_POLICY_UNIQUE, &platform_key, &platform_len,
                                            nullptr, nullptr);
  if (r != OE_OK || platform_len == 0)
    return session.fail(VEIL_ERR_CONFIG,
                        "this enclave has no platform sealing key (%s); pass a %zu-byte key "
                        "(the virtual backend never has one)",
                        oe_result_str(r), kSealKeyBytes);
  // Stretch the platform's 128-bit key to AES-256 width; same key, same result.
  for (size_t i = 0; i < kSealKeyBytes; ++i) out[i] = platform_key[i % platform_len];
  wipe(platform_key, platform_len);
  oe_free_seal_key(platform_key, nullptr);
  return VEIL_OK;
}

}  // namespace

size_t Training::state_size() const {
  size_t bytes = sizeof kMagic + 4 + kConfigBytes + kProgressBytes;
  for (const Layer& l : layers_) bytes += 2 * 8 + 8 * 2 * (size_t{l.n} + 1 + l.m);
  return bytes;
}

size_t Training::checkpoint_size() const { return state_size() + kSealOverhead; }

int Training::checkpoint(Session& session, const uint8_t* key, size_t key_len, uint8_t* blob,
                         size_t capacity, uint64_t* blob_len) {
  const size_t size = checkpoint_size();
  if (capacity < size)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "checkpoint: the buffer holds %zu bytes, %zu needed",
                        capacity, size);
  // Only weights that match the fingerprints are worth keeping: a device that
  // lied in the last update must not turn the newest checkpoint into one that
  // cannot be resumed. The host stores the weights these reads returned.
  call_name_ = "checkpoint";
  for (uint32_t l = 0; l < layers_.size(); ++l) {
    int rc = audit(session, l, Phase::export_check, nullptr);
    if (rc != VEIL_OK) return rc;
  }
  uint8_t seal_key[kSealKeyBytes];
  int rc = sealing_key(session, key, key_len, seal_key);
  if (rc != VEIL_OK) return rc;
  std::vector<uint8_t> plain;
  plain.reserve(state_size());
  Encoder e(&plain);
  e.bytes(kMagic, sizeof kMagic);
  e.u32(kVersion);
  encode_config(e, config_);
  e.u64(step_);
  e.i32(lr_exp_);
  e.i32(batch_exp_);
  e.u64(session.counters().checks_passed);
  e.u64(session.counters().products);
  e.u64(session.counters().saturated);
  for (const Layer& l : layers_) {
    e.f64(l.device_max);
    e.f64(l.proven_max);
    e.u64s(l.s);
    e.u64s(l.t);
    e.u64s(l.v);
    e.u64s(l.w);
  }
  std::vector<uint8_t> ad = associated_data(specs_.data(), specs_.size());
  const bool sealed = plain.size() == state_size() &&
                      seal(seal_key, ad.data(), ad.size(), plain.data(), plain.size(), blob);
  wipe(seal_key, sizeof seal_key);
  wipe(plain.data(), plain.size());
  if (!sealed) return session.fail(VEIL_ERR_INTERNAL, "checkpoint: sealing failed");
  *blob_len = size;
  return VEIL_OK;
}

// Decode a state sealed for this model; false when it is malformed.
bool Training::decode_state(Decoder& d, const veil_layer_spec_t* layers, size_t layer_count,
                            veil_train_config_t* sealed_config, Counters* counters) {
  *sealed_config = decode_config(d);
  step_ = d.u64();
  lr_exp_ = d.i32();
  batch_exp_ = d.i32();
  counters->checks_passed = d.u64();
  counters->products = d.u64();
  counters->saturated = d.u64();
  shape_layers(layers, layer_count, &layers_);
  specs_.assign(layers, layers + layer_count);
  for (Layer& l : layers_) {
    l.device_max = d.f64();
    l.proven_max = d.f64();
    d.u64s(&l.s, l.m);
    d.u64s(&l.t, l.n + 1);
    d.u64s(&l.v, l.n + 1);
    d.u64s(&l.w, l.m);
  }
  return d.ok() && d.left() == 0;
}

int Training::restore(Session& session, const veil_train_config_t& config,
                      const veil_layer_spec_t* layers, size_t layer_count, const uint8_t* key,
                      size_t key_len, const uint8_t* blob, size_t blob_len,
                      std::unique_ptr<Training>* out) {
  int rc = validate_model(session, config, layers, layer_count);
  if (rc != VEIL_OK) return rc;
  uint8_t seal_key[kSealKeyBytes];
  rc = sealing_key(session, key, key_len, seal_key);
  if (rc != VEIL_OK) return rc;
  if (blob_len < kSealOverhead || blob_len > (size_t{1} << 34))
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "restore: a checkpoint of %zu bytes cannot be valid",
                        blob_len);
  std::vector<uint8_t> plain(blob_len - kSealOverhead);
  std::vector<uint8_t> ad = associated_data(layers, layer_count);
  const bool opened = unseal(seal_key, ad.data(), ad.size(), blob, blob_len, plain.data());
  wipe(seal_key, sizeof seal_key);
  if (!opened)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "restore: the checkpoint does not authenticate (tampered, sealed under "
                        "another key or in another format version, or for another model)");
  Decoder d(plain.data(), plain.size());
  std::unique_ptr<Training> t(new Training());
  Counters counters;
  veil_train_config_t sealed_config{};
  const bool header = d.bytes_equal(kMagic, sizeof kMagic) && d.u32() == kVersion;
  const bool decoded =
      header && t->decode_state(d, layers, layer_count, &sealed_config, &counters);
  wipe(plain.data(), plain.size());
  if (!decoded)
    return session.fail(VEIL_ERR_INVALID_ARGUMENT, "restore: the checkpoint's state is malformed");
  if (!same_config(sealed_config, config))
    return session.fail(VEIL_ERR_INVALID_ARGUMENT,
                        "restore: the checkpoint was sealed for another configuration");
  t->config_ = config;
  t->restored_ = true;
  t->first_step_ = t->step_;
  t->allocate_buffers();
  // The weights the host kept beside the checkpoint must be the ones these
  // fingerprints describe: a state rolled back or forward against them, or
  // weights altered while stored, fails here.
  t->call_name_ = "restore";
  for (uint32_t li = 0; li < layer_count; ++li) {
    rc = t->audit(session, li, Phase::export_check, nullptr);
    if (rc != VEIL_OK) return rc;
  }
  // The counters go on from where the checkpoint left them (plus the checks above).
  session.counters().checks_passed += counters.checks_passed;
  session.counters().products += counters.products;
  session.counters().saturated += counters.saturated;
  *out = std::move(t);
  return VEIL_OK;
}

}  // namespace veil::enclave
