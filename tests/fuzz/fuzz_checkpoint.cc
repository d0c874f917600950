// libFuzzer harness: sealed checkpoints of verify training. A session trains a
// small model (one step, on request), then the input drives
//   ecall_train_checkpoint_size and ecall_train_checkpoint with any pointer NULL,
//     any key length and key, any capacity around the real size;
//   ecall_train_restore, into a fresh session whose device holds the weights kept
//     beside the checkpoint, with any pointer NULL, any layer count, one byte of
//     the configuration or of the layers changed, another key, another blob length,
//     bytes of the blob flipped, or one stored weight altered.
// Besides the sanitizers and enclave aborts, the harness stops the process when a
// call that must succeed is refused (an untouched checkpoint must restore, and the
// restored session must train) or one that must be refused succeeds (a checkpoint
// restored with anything changed), or a refusal comes without an error message.
//
// Input layout (zero-padded when short):
//   u16 flags            bit 0 size NULL, 1 key NULL, 2 blob NULL, 3 blob_len NULL (the
//                        checkpoint calls); 4 train one step first; 5 config NULL,
//                        6 layers NULL, 7 key NULL, 8 blob NULL (the restore);
//                        9 alter one stored weight before the restore
//   u8  key_len          of the checkpoint call
//   i8  capacity         minus the real size, of the checkpoint call
//   32 bytes             the key (repeated to fill longer keys)
//   u8  key_len          of the restore
//   u8  key change       xor of the restore key's first byte (0: the same key)
//   u8  layer_count      of the restore
//   u8 u8                config byte to change (mod its size) and its xor
//   u8 u8                layers byte to change (mod their size) and its xor
//   i16 blob_len         minus the checkpoint's size, of the restore
//   u8 u8 u8             the stored weight to alter: layer, index, amount - 1
//   then (u16 offset, u8 xor) blob edits, up to kMaxEdits
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_common.h"
#include "../cpp/small_model.h"

namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kMaxEdits = 8;
constexpr uint32_t kBatch = 4;

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint64_t le(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{byte()} << (8 * i);
    return v;
  }
  uint8_t byte() {
    if (size_ == 0) return 0;
    --size_;
    return *data_++;
  }
  bool empty() const { return size_ == 0; }

 private:
  const uint8_t* data_;
  size_t size_;
};

veil_train_config_t train_config() { return veil_test::small_wire_config(kBatch, 5); }

const std::vector<veil_layer_spec_t> kModel = {{4, 8, 1}, {8, 3, 0}};

// `length` bytes of the key material, repeated.
std::vector<uint8_t> key_of(const uint8_t (&material)[kKeyBytes], size_t length) {
  std::vector<uint8_t> key(length);
  for (size_t i = 0; i < length; ++i) key[i] = material[i % kKeyBytes];
  return key;
}

// A refused call explains itself.
void expect_message(oe_enclave_t* enclave, uint64_t session, oe_result_t r, int rc) {
  if (r == OE_OK && rc != VEIL_OK && veil::detail::last_error(enclave, session).empty())
    __builtin_trap();
}

// base + delta, not below 0.
size_t offset_by(uint64_t base, int delta) {
  return static_cast<size_t>(std::max<int64_t>(0, static_cast<int64_t>(base) + delta));
}

void train_one_step(oe_enclave_t* enclave, uint64_t session) {
  std::vector<double> x(kBatch * kModel.front().inputs);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25 * static_cast<double>(i % 5) - 0.5;
  std::vector<int32_t> labels(kBatch);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 3);
  veil_step_result_t result{};
  int rc = -1;
  oe_result_t r = ecall_train_step(enclave, &rc, session, x.data(), x.size(), labels.data(),
                                   labels.size(), &result);
  veil_fuzz::expect_alive(r, "ecall_train_step");
  if (r != OE_OK || rc != VEIL_OK) __builtin_trap();  // an honest step on an honest device
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  oe_enclave_t* enclave = veil_fuzz::enclave();
  Reader in(data, size);
  const uint32_t flags = static_cast<uint32_t>(in.le(2));
  auto flag = [flags](int bit) { return (flags >> bit) & 1u; };
  const size_t key_len = in.byte();
  const int capacity_delta = static_cast<int8_t>(in.byte());
  uint8_t material[kKeyBytes];
  for (uint8_t& b : material) b = in.byte();
  const size_t restore_key_len = in.byte();
  const uint8_t key_xor = in.byte();
  const size_t layer_count = in.byte();
  const uint8_t config_at = in.byte(), config_xor = in.byte();
  const uint8_t layers_at = in.byte(), layers_xor = in.byte();
  const int blob_delta = static_cast<int16_t>(in.le(2));
  const uint8_t weight_layer = in.byte() % kModel.size(), weight_at = in.byte();
  const double weight_change = 1.0 + in.byte();

  // The session whose state is sealed.
  veil_fuzz::Session source;
  const veil_train_config_t config = train_config();
  int rc = -1;
  oe_result_t r =
      ecall_train_init(enclave, &rc, source.id(), &config, kModel.data(), kModel.size());
  veil_fuzz::expect_alive(r, "ecall_train_init");
  if (r != OE_OK || rc != VEIL_OK) __builtin_trap();  // a fixed, valid model
  if (flag(4)) train_one_step(enclave, source.id());

  uint64_t checkpoint_bytes = 0;
  r = ecall_train_checkpoint_size(enclave, &rc, source.id(), flag(0) ? nullptr : &checkpoint_bytes);
  veil_fuzz::expect_alive(r, "ecall_train_checkpoint_size");
  expect_message(enclave, source.id(), r, rc);
  if (flag(0) ? (r == OE_OK && rc == VEIL_OK) : (r != OE_OK || rc != VEIL_OK))
    __builtin_trap();  // NULL is refused; a live session knows its size
  if (flag(0)) {
    r = ecall_train_checkpoint_size(enclave, &rc, source.id(), &checkpoint_bytes);
    if (r != OE_OK || rc != VEIL_OK) __builtin_trap();
  }

  // The fuzzed checkpoint call.
  {
    const std::vector<uint8_t> key = key_of(material, key_len);
    const size_t capacity = offset_by(checkpoint_bytes, capacity_delta);
    std::vector<uint8_t> blob(capacity);  // exactly sized: ASan sees a write past it
    uint64_t written = 0;
    const bool key_null = flag(1), blob_null = flag(2), len_null = flag(3);
    r = ecall_train_checkpoint(enclave, &rc, source.id(), key_null ? nullptr : key.data(), key_len,
                               blob_null ? nullptr : blob.data(), capacity,
                               len_null ? nullptr : &written);
    veil_fuzz::expect_alive(r, "ecall_train_checkpoint");
    expect_message(enclave, source.id(), r, rc);
    const bool ok = r == OE_OK && rc == VEIL_OK;
    // key_len 0 asks for the platform's sealing key: backend-dependent, not judged.
    const bool must_fail = blob_null || len_null || (key_null && key_len > 0) ||
                           (key_len != 0 && key_len != kKeyBytes) || capacity < checkpoint_bytes;
    const bool must_succeed = !key_null && key_len == kKeyBytes && !must_fail;
    if ((must_fail && ok) || (must_succeed && (!ok || written != checkpoint_bytes)))
      __builtin_trap();
  }

  // The checkpoint the restore starts from: the caller's key, the exact size.
  const std::vector<uint8_t> key = key_of(material, kKeyBytes);
  std::vector<uint8_t> sealed(checkpoint_bytes);
  uint64_t written = 0;
  r = ecall_train_checkpoint(enclave, &rc, source.id(), key.data(), key.size(), sealed.data(),
                             sealed.size(), &written);
  if (r != OE_OK || rc != VEIL_OK || written != checkpoint_bytes) __builtin_trap();

  // A fresh session whose device gets the weights kept beside the checkpoint, as
  // the host's restore sends them (through the ocall router).
  veil_fuzz::Session target;
  bool changed = false;
  for (uint32_t l = 0; l < kModel.size(); ++l) {
    const size_t rows = kModel[l].inputs + 1, cols = kModel[l].outputs;
    std::vector<double> w(rows * cols);
    if (ocall_device_download(source.id(), l, w.data(), w.size()) != VEIL_OK) __builtin_trap();
    if (flag(9) && l == weight_layer) {
      w[weight_at % w.size()] += weight_change;  // weights altered while stored
      changed = true;
    }
    if (ocall_device_upload(target.id(), l, w.data(), rows, cols, w.size()) != VEIL_OK)
      __builtin_trap();
  }

  veil_train_config_t restore_config = config;
  if (config_xor != 0) {
    reinterpret_cast<uint8_t*>(&restore_config)[config_at % sizeof restore_config] ^= config_xor;
    changed = true;
  }
  std::vector<veil_layer_spec_t> layers(layer_count);
  std::copy_n(kModel.begin(), std::min(layer_count, kModel.size()), layers.begin());
  if (layer_count != kModel.size()) changed = true;
  if (layers_xor != 0 && layer_count > 0) {
    reinterpret_cast<uint8_t*>(layers.data())[layers_at % (layer_count * sizeof layers[0])] ^=
        layers_xor;
    changed = true;
  }
  std::vector<uint8_t> restore_key = key_of(material, restore_key_len);
  if (restore_key_len > 0) restore_key[0] ^= key_xor;
  if (restore_key_len != kKeyBytes || key_xor != 0) changed = true;
  const size_t blob_len = offset_by(checkpoint_bytes, blob_delta);
  if (blob_len != checkpoint_bytes) changed = true;
  std::vector<uint8_t> blob(blob_len);
  std::copy_n(sealed.begin(), std::min(blob_len, sealed.size()), blob.begin());
  for (size_t e = 0; e < kMaxEdits && !in.empty(); ++e) {
    const size_t at = in.le(2);
    const uint8_t x = in.byte();
    if (at < blob.size()) blob[at] ^= x;
  }
  // Judged by the result, not the edits: two edits of one byte can cancel out.
  if (blob != sealed) changed = true;
  for (int bit = 5; bit <= 8; ++bit)
    if (flag(bit)) changed = true;

  r = ecall_train_restore(enclave, &rc, target.id(), flag(5) ? nullptr : &restore_config,
                          flag(6) ? nullptr : layers.data(), layer_count,
                          flag(7) ? nullptr : restore_key.data(), restore_key_len,
                          flag(8) ? nullptr : blob.data(), blob_len);
  veil_fuzz::expect_alive(r, "ecall_train_restore");
  expect_message(enclave, target.id(), r, rc);
  const bool restored = r == OE_OK && rc == VEIL_OK;
  if (restored == changed) __builtin_trap();  // untouched restores; anything changed is refused
  if (restored) train_one_step(enclave, target.id());  // and the restored session trains
  return 0;
}
