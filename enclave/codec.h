#pragma once
// Little-endian, field-by-field encoding of the formats the enclave seals
// (checkpoints, inference slots): a format never depends on the compiler's
// struct layout or the machine's byte order, and every read is bounds-checked.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace veil::enclave {

inline void put_le(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

/** Appends fields to a byte vector. */
class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>* out) : out_(out) {}
  void u32(uint32_t v) { put(v, 4); }
  void i32(int32_t v) { put(static_cast<uint32_t>(v), 4); }
  void u64(uint64_t v) { put(v, 8); }
  void f64(double v) {  // the IEEE-754 bit pattern
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    put(bits, 8);
  }
  void bytes(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  void u64s(const std::vector<uint64_t>& values) {
    for (uint64_t v : values) u64(v);
  }

 private:
  void put(uint64_t v, int n) {
    uint8_t b[8];
    put_le(b, v, n);
    out_->insert(out_->end(), b, b + n);
  }
  std::vector<uint8_t>* out_;
};

/** Reads what Encoder wrote; a read past the end clears ok() and yields zeros. */
class Decoder {
 public:
  Decoder(const uint8_t* p, size_t size) : p_(p), left_(size) {}
  bool ok() const { return ok_; }
  size_t left() const { return left_; }
  uint32_t u32() { return static_cast<uint32_t>(take(4)); }
  int32_t i32() { return static_cast<int32_t>(static_cast<uint32_t>(take(4))); }
  uint64_t u64() { return take(8); }
  double f64() {
    const uint64_t bits = take(8);
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  bool bytes_equal(const void* expected, size_t n) {
    if (!room(n)) return false;
    const bool same = std::memcmp(p_, expected, n) == 0;
    p_ += n;
    left_ -= n;
    return same;
  }
  void u64s(std::vector<uint64_t>* out, size_t n) {
    out->assign(room(8 * n) ? n : 0, 0);
    for (uint64_t& v : *out) v = take(8);
  }

 private:
  bool room(size_t n) {
    if (left_ < n) ok_ = false;
    return ok_;
  }
  uint64_t take(int n) {
    if (!room(static_cast<size_t>(n))) return 0;
    const uint64_t v = get_le(p_, n);
    p_ += n;
    left_ -= n;
    return v;
  }
  const uint8_t* p_;
  size_t left_;
  bool ok_ = true;
};

}  // namespace veil::enclave
