#pragma once
/**
 * @file prg.h
 * The enclave's CSPRNG: an AES-128-CTR keystream addressable by
 * (key, stream, block), and uniform integers below a bound by rejection
 * sampling (never a biased modular conversion).
 *
 * The 128-bit counter block is stream (big-endian, high 8 bytes) followed by
 * the block index (big-endian, low 8 bytes), so keystream(stream, block)
 * starts at byte 16 * block of that stream and a (layer, slot) mask can be
 * regenerated instead of stored. The cipher comes from libcrypto's EVP API:
 * OpenSSL in the virtual backend, openenclave::oecryptoopenssl in Open Enclave
 * builds. The key is a parameter: the enclave draws it from oe_random or
 * getrandom; this class never reads entropy itself.
 */

#include <cstddef>
#include <cstdint>

#include "math/status.h"

namespace veil {
namespace math {

/** A 128-bit AES key. */
struct PrgKey {
  std::uint8_t bytes[16];
};

/** Packs two 32-bit coordinates (e.g. layer, slot) into a stream id. */
constexpr std::uint64_t prg_stream(std::uint32_t hi, std::uint32_t lo) noexcept {
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

/** Keyed AES-128-CTR generator. Not copyable; the key schedule is wiped on destruction.
 *  Calls mutate the cipher context: use one Prg per thread. */
class Prg {
 public:
  Prg() noexcept = default;
  ~Prg();
  Prg(const Prg&) = delete;
  Prg& operator=(const Prg&) = delete;

  /** Installs the key. Returns crypto_failure if libcrypto cannot set up AES-128-CTR. */
  Status init(const PrgKey& key) noexcept;

  /** True once init() succeeded. */
  bool ready() const noexcept { return ctx_ != nullptr; }

  /**
   * Writes len keystream bytes of `stream`, starting at block index `block`
   * (byte offset 16 * block). Deterministic in (key, stream, block).
   */
  Status keystream(std::uint64_t stream, std::uint64_t block, std::uint8_t* out,
                   std::size_t len) noexcept;

  /**
   * Fills out[0..n) with independent uniform integers in [0, bound), bound >= 1,
   * reading 8-byte little-endian words of the keystream from `first_block`:
   * each word is masked to bitlen(bound - 1) bits and rejected if >= bound.
   */
  Status uniform(std::uint64_t stream, std::uint64_t first_block, std::uint64_t bound,
                 std::uint64_t* out, std::size_t n) noexcept;

  /** Uniform elements of F_q (q = 2^61 - 1) from the start of `stream`. */
  Status uniform_mod_q(std::uint64_t stream, std::uint64_t* out, std::size_t n) noexcept;

  /** Uniform elements of F_pb (p_b = 2^48 - 59) from the start of `stream`. */
  Status uniform_mod_pb(std::uint64_t stream, std::uint64_t* out, std::size_t n) noexcept;

 private:
  void* ctx_ = nullptr;  // EVP_CIPHER_CTX*, kept opaque so users need no OpenSSL headers
};

}  // namespace math
}  // namespace veil
