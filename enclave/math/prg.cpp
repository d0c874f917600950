#include "math/prg.h"

#include <openssl/evp.h>

#include <climits>
#include <cstring>

#include "math/field.h"

namespace veil {
namespace math {

namespace {

EVP_CIPHER_CTX* as_ctx(void* p) noexcept { return static_cast<EVP_CIPHER_CTX*>(p); }

void put_be64(std::uint8_t* p, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

std::uint64_t get_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

// Bytes of keystream per cipher call in uniform(): 16 KiB keeps the
// zero-fill, the cipher and the rejection filter in L1/L2.
constexpr std::size_t kChunk = 16384;

// Rejection filter: appends the masked words of src that are below bound to
// out[k..n) and returns the new k. src may be out + k itself: word r is read
// before out[k] (k <= its index) is written. Plain values, not references,
// so the output stores cannot alias the loop state.
std::size_t keep_below(const std::uint8_t* src, std::size_t words, std::uint64_t mask,
                       std::uint64_t bound, std::uint64_t* out, std::size_t k,
                       std::size_t n) noexcept {
  for (std::size_t r = 0; r < words && k < n; ++r) {
    const std::uint64_t v = get_le64(src + 8 * r) & mask;
    out[k] = v;      // overwritten unless accepted
    k += v < bound;  // branch-free rejection
  }
  return k;
}

}  // namespace

Prg::~Prg() {
  if (ctx_ != nullptr) EVP_CIPHER_CTX_free(as_ctx(ctx_));  // also cleanses the key schedule
}

Status Prg::init(const PrgKey& key) noexcept {
  if (ctx_ != nullptr) {
    EVP_CIPHER_CTX_free(as_ctx(ctx_));
    ctx_ = nullptr;
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return Status::at(Fault::crypto_failure);
  static const std::uint8_t zero_iv[16] = {0};
  if (EVP_EncryptInit_ex(ctx, EVP_aes_128_ctr(), nullptr, key.bytes, zero_iv) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return Status::at(Fault::crypto_failure);
  }
  ctx_ = ctx;
  return Status::success();
}

namespace {

// Restarts the counter at (stream, block). A new IV with no key keeps the key
// schedule; it costs about as much as encrypting 16 KiB, so uniform() calls it
// once and lets the counter run on.
bool ctr_start(EVP_CIPHER_CTX* ctx, std::uint64_t stream, std::uint64_t block) noexcept {
  std::uint8_t iv[16];
  put_be64(iv, stream);
  put_be64(iv + 8, block);
  return EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv) == 1;
}

// The next len bytes of keystream (len a multiple of 16 keeps the counter
// block-aligned). Encrypting zeros in place yields the bare keystream.
bool ctr_next(EVP_CIPHER_CTX* ctx, std::uint8_t* out, std::size_t len) noexcept {
  std::memset(out, 0, len);
  std::size_t done = 0;
  while (done < len) {
    const std::size_t part = len - done < (1u << 30) ? len - done : (1u << 30);
    int outl = 0;
    if (EVP_EncryptUpdate(ctx, out + done, &outl, out + done, static_cast<int>(part)) != 1 ||
        static_cast<std::size_t>(outl) != part) {
      return false;
    }
    done += part;
  }
  return true;
}

}  // namespace

Status Prg::keystream(std::uint64_t stream, std::uint64_t block, std::uint8_t* out,
                      std::size_t len) noexcept {
  if (ctx_ == nullptr || (out == nullptr && len != 0)) return Status::at(Fault::invalid_argument);
  if (len == 0) return Status::success();
  EVP_CIPHER_CTX* ctx = as_ctx(ctx_);
  if (!ctr_start(ctx, stream, block) || !ctr_next(ctx, out, len)) {
    return Status::at(Fault::crypto_failure);
  }
  return Status::success();
}

Status Prg::uniform(std::uint64_t stream, std::uint64_t first_block, std::uint64_t bound,
                    std::uint64_t* out, std::size_t n) noexcept {
  if (ctx_ == nullptr || bound == 0 || (out == nullptr && n != 0)) {
    return Status::at(Fault::invalid_argument);
  }
  const std::uint64_t top = bound - 1;
  const int bits = top == 0 ? 0 : 64 - __builtin_clzll(top);
  const std::uint64_t mask = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
  std::size_t k = 0;
  EVP_CIPHER_CTX* ctx = as_ctx(ctx_);
  if (n != 0 && !ctr_start(ctx, stream, first_block)) return Status::at(Fault::crypto_failure);
  while (k < n) {
    const std::size_t left = n - k;
    if (left >= 2) {
      // Whole blocks straight into the output, a cache-sized piece at a time:
      // no copy, and each piece is written once, filtered while still in cache.
      const std::size_t words = (left < kChunk / 8 ? left : kChunk / 8) & ~std::size_t{1};
      std::uint8_t* dst = reinterpret_cast<std::uint8_t*>(out + k);
      if (!ctr_next(ctx, dst, words * 8)) return Status::at(Fault::crypto_failure);
      // Fast path for bound <= 2^63 (q and p_b reject almost never): mask
      // every word and AND the differences v - bound, whose top bit is set
      // exactly when v < bound; the loop vectorizes. Only if some word must
      // go, compact; masking twice is harmless.
      if (bits <= 63) {
        std::uint64_t below = ~std::uint64_t{0};
        for (std::size_t r = 0; r < words; ++r) {
          const std::uint64_t v = get_le64(dst + 8 * r) & mask;
          out[k + r] = v;
          below &= v - bound;
        }
        if (below >> 63) {
          k += words;
          continue;
        }
      }
      k = keep_below(dst, words, mask, bound, out, k, n);
    } else {
      // One word left: take a block (two words) through a small buffer.
      alignas(16) std::uint8_t buf[16];
      if (!ctr_next(ctx, buf, sizeof buf)) return Status::at(Fault::crypto_failure);
      k = keep_below(buf, 2, mask, bound, out, k, n);
      std::memset(buf, 0, sizeof buf);  // leave no keystream on the stack
      __asm__ __volatile__("" : : "r"(buf) : "memory");
    }
  }
  return Status::success();
}

Status Prg::uniform_mod_q(std::uint64_t stream, std::uint64_t* out, std::size_t n) noexcept {
  return uniform(stream, 0, FieldQ::modulus, out, n);
}

Status Prg::uniform_mod_pb(std::uint64_t stream, std::uint64_t* out, std::size_t n) noexcept {
  return uniform(stream, 0, FieldPb::modulus, out, n);
}

}  // namespace math
}  // namespace veil
