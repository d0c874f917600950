#pragma once
/**
 * @file field.h
 * Prime-field arithmetic for the two moduli of veil (docs/design.md §3):
 *
 * - FieldQ: the verification field, q = 2^61 - 1 (a Mersenne prime). Reduction
 *   uses 2^61 = 1 (mod q): x = hi * 2^61 + lo  ->  hi + lo, shifts and adds only.
 * - FieldPb: the blinding field for private inference, p_b = 2^48 - 59 (the
 *   largest prime below 2^48). Reduction uses 2^48 = 59 (mod p_b).
 *
 * Both types expose the same static interface (PrimeField) so generic code can
 * take either as a template argument. Elements are uint64_t in [0, modulus).
 * No function divides: 128-bit division would pull a libgcc helper into the
 * enclave image.
 * docs/arithmetic.md explains why these moduli and the limb split were chosen.
 */

#include <cstdint>

namespace veil {
namespace math {

/** Unsigned 128-bit integer (GCC/Clang extension), used for exact products. */
__extension__ typedef unsigned __int128 u128;

/** Largest magnitude (exclusive) of an integer the device may return: 2^53. */
constexpr double kExactLimit = 9007199254740992.0;

/**
 * What both fields share, written once over F's modulus (< 2^62) and its
 * reductions F::reduce (any 64-bit value) and F::reduce128 (any 128-bit one).
 */
template <class F>
struct PrimeField {
  /** Maps a signed integer to its residue in [0, modulus). */
  static constexpr std::uint64_t from_int(std::int64_t x) noexcept {
    // |INT64_MIN| = 2^63 fits in uint64; reduce the magnitude, then negate.
    const std::uint64_t mag = x < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(x)
                                    : static_cast<std::uint64_t>(x);
    const std::uint64_t r = F::reduce(mag);
    return (x < 0 && r != 0) ? F::modulus - r : r;
  }

  /** Centred representative in (-modulus/2, modulus/2]. */
  static constexpr std::int64_t centre(std::uint64_t a) noexcept {
    return a > F::modulus / 2
               ? static_cast<std::int64_t>(a) - static_cast<std::int64_t>(F::modulus)
               : static_cast<std::int64_t>(a);
  }

  static constexpr std::uint64_t add(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t s = a + b;  // < 2^63, no overflow
    return s >= F::modulus ? s - F::modulus : s;
  }
  static constexpr std::uint64_t sub(std::uint64_t a, std::uint64_t b) noexcept {
    return a >= b ? a - b : a + F::modulus - b;
  }
  static constexpr std::uint64_t neg(std::uint64_t a) noexcept {
    return a == 0 ? 0 : F::modulus - a;
  }
  static constexpr std::uint64_t mul(std::uint64_t a, std::uint64_t b) noexcept {
    return F::reduce128(static_cast<u128>(a) * b);
  }
};

/** The verification field F_q, q = 2^61 - 1. */
struct FieldQ : PrimeField<FieldQ> {
  /** q = 2^61 - 1. */
  static constexpr std::uint64_t modulus = (std::uint64_t{1} << 61) - 1;

  /** Reduces any 64-bit value to [0, q). */
  static constexpr std::uint64_t reduce(std::uint64_t x) noexcept {
    std::uint64_t r = (x & modulus) + (x >> 61);  // < 2^61 + 8
    return r >= modulus ? r - modulus : r;
  }

  /** Reduces any 128-bit value to [0, q). */
  static constexpr std::uint64_t reduce128(u128 x) noexcept {
    u128 r = (x & modulus) + (x >> 61);                                    // < 2^68
    r = (r & modulus) + (r >> 61);                                         // < 2^61 + 2^7
    return reduce(static_cast<std::uint64_t>(r));
  }
};

/** The blinding field F_pb, p_b = 2^48 - 59. */
struct FieldPb : PrimeField<FieldPb> {
  /** p_b = 2^48 - 59, prime. */
  static constexpr std::uint64_t modulus = (std::uint64_t{1} << 48) - 59;

  /** Reduces any 64-bit value to [0, p_b). */
  static constexpr std::uint64_t reduce(std::uint64_t x) noexcept {
    constexpr std::uint64_t m48 = (std::uint64_t{1} << 48) - 1;
    std::uint64_t r = (x & m48) + (x >> 48) * 59;  // < 2^48 + 2^22
    r = (r & m48) + (r >> 48) * 59;                // < 2^48 + 59 < 2 p_b
    return r >= modulus ? r - modulus : r;
  }

  /** Reduces any 128-bit value to [0, p_b). */
  static constexpr std::uint64_t reduce128(u128 x) noexcept {
    constexpr std::uint64_t m48 = (std::uint64_t{1} << 48) - 1;
    u128 r = (x & m48) + (x >> 48) * 59;  // < 2^48 + 2^86
    r = (r & m48) + (r >> 48) * 59;       // < 2^48 + 2^45
    return reduce(static_cast<std::uint64_t>(r));
  }
};

}  // namespace math
}  // namespace veil
