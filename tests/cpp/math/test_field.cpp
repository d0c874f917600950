// Field arithmetic mod q = 2^61 - 1 and mod p_b = 2^48 - 59 against a
// 128-bit division reference, on edge and random values.

#include <gtest/gtest.h>

#include <limits>

#include "math/field.h"
#include "math_test_util.h"

namespace veil {
namespace math {
namespace {

using testing_util::ref_mod;
using testing_util::ref_mod_signed;

template <class F>
std::vector<std::uint64_t> edge_values() {
  const std::uint64_t m = F::modulus;
  return {0,
          1,
          2,
          m - 1,
          m - 2,
          m,
          m + 1,
          2 * m - 1,
          std::uint64_t{1} << 48,
          (std::uint64_t{1} << 48) + 1,
          std::uint64_t{1} << 61,
          (std::uint64_t{1} << 61) + 1,
          (std::uint64_t{1} << 62) - 1,
          std::uint64_t{1} << 63,
          std::numeric_limits<std::uint64_t>::max(),
          std::numeric_limits<std::uint64_t>::max() - 1,
          0x123456789abcdefull};
}

template <class F>
std::vector<std::int64_t> signed_edges() {
  const auto m = static_cast<std::int64_t>(F::modulus);
  return {0, 1, -1, -2, m, -m, m - 1, -(m - 1), m + 1, -(m + 1), -(std::int64_t{1} << 61),
          -(std::int64_t{1} << 53), std::numeric_limits<std::int64_t>::min(),
          std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min() + 1};
}

template <class F>
void check_field() {
  const std::uint64_t m = F::modulus;
  std::mt19937_64 rng(61);
  std::vector<std::uint64_t> raw = edge_values<F>();
  for (int i = 0; i < 2000; ++i) raw.push_back(rng());
  // reduce() of any 64-bit value.
  for (std::uint64_t x : raw) ASSERT_EQ(F::reduce(x), ref_mod(x, m)) << x;
  // reduce128() of edge and random 128-bit values.
  std::vector<u128> wide = {0, 1, static_cast<u128>(m), static_cast<u128>(m) * m,
                            ~static_cast<u128>(0), static_cast<u128>(1) << 127,
                            (static_cast<u128>(1) << 122) - 1};
  for (int i = 0; i < 2000; ++i) wide.push_back((static_cast<u128>(rng()) << 64) | rng());
  for (u128 x : wide) ASSERT_EQ(F::reduce128(x), ref_mod(x, m));
  // from_int() including negatives and INT64_MIN.
  std::vector<std::int64_t> sv = signed_edges<F>();
  for (int i = 0; i < 2000; ++i) sv.push_back(static_cast<std::int64_t>(rng()));
  for (std::int64_t x : sv) ASSERT_EQ(F::from_int(x), ref_mod_signed(x, m)) << x;
  // Binary operations on canonical elements: edges and random.
  std::vector<std::uint64_t> el;
  for (std::uint64_t x : raw) el.push_back(ref_mod(x, m));
  for (std::size_t i = 0; i < el.size(); ++i) {
    for (std::size_t k = 0; k < el.size(); k += (i < 20 ? 1 : 97)) {
      const std::uint64_t a = el[i], b = el[k];
      ASSERT_EQ(F::add(a, b), ref_mod(static_cast<u128>(a) + b, m));
      ASSERT_EQ(F::sub(a, b), ref_mod(static_cast<u128>(a) + m - b, m));
      ASSERT_EQ(F::mul(a, b), ref_mod(static_cast<u128>(a) * b, m));
    }
    ASSERT_EQ(F::neg(el[i]), ref_mod(static_cast<u128>(m) - el[i], m));
    const std::int64_t c = F::centre(el[i]);
    ASSERT_LE(c, static_cast<std::int64_t>(m / 2));
    ASSERT_GT(c, -static_cast<std::int64_t>(m / 2) - 1);
    ASSERT_EQ(F::from_int(c), el[i]);
  }
  // Fermat: a^(m-1) = 1 for a != 0 (a sanity check that the modulus is prime).
  for (int i = 0; i < 20; ++i) {
    const std::uint64_t a = 1 + rng() % (m - 1);
    ASSERT_EQ(testing_util::pow_mod<F>(a, m - 1), 1u);
  }
}

TEST(MathField, MersenneQAgreesWith128BitReference) {
  static_assert(FieldQ::modulus == 2305843009213693951ull, "q = 2^61 - 1");
  check_field<FieldQ>();
  // The defining identities of the shift-and-add reduction.
  EXPECT_EQ(FieldQ::reduce(std::uint64_t{1} << 61), 1u);
  EXPECT_EQ(FieldQ::reduce(std::uint64_t{1} << 62), 2u);
  EXPECT_EQ(FieldQ::reduce128(static_cast<u128>(1) << 64), 8u);
  EXPECT_EQ(FieldQ::from_int(-1), FieldQ::modulus - 1);
}

TEST(MathField, BlindingPrimeAgreesWith128BitReference) {
  static_assert(FieldPb::modulus == 281474976710597ull, "p_b = 2^48 - 59");
  check_field<FieldPb>();
  EXPECT_EQ(FieldPb::reduce(std::uint64_t{1} << 48), 59u);
  EXPECT_EQ(FieldPb::from_int(-1), FieldPb::modulus - 1);
}

TEST(MathField, BlindingPrimeIsPrime) {
  // Deterministic Miller-Rabin for 64-bit inputs with the first 12 prime bases.
  const std::uint64_t n = FieldPb::modulus;
  std::uint64_t d = n - 1;
  int s = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++s;
  }
  for (std::uint64_t a : {2ull, 3ull, 5ull, 7ull, 11ull, 13ull, 17ull, 19ull, 23ull, 29ull, 31ull, 37ull}) {
    std::uint64_t x = testing_util::pow_mod<FieldPb>(a, d);
    if (x == 1 || x == n - 1) continue;
    bool witness = true;
    for (int r = 1; r < s && witness; ++r) {
      x = FieldPb::mul(x, x);
      if (x == n - 1) witness = false;
    }
    ASSERT_FALSE(witness) << "base " << a;
  }
}

}  // namespace
}  // namespace math
}  // namespace veil
