// The AES-128-CTR keystream (NIST SP 800-38A F.5.1/F.5.2), its addressing by
// (stream, block), and rejection sampling of uniform field elements.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "math/field.h"
#include "math/prg.h"

namespace veil {
namespace math {
namespace {

std::vector<std::uint8_t> hex(const char* s) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; s[i] && s[i + 1]; i += 2) {
    auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    out.push_back(static_cast<std::uint8_t>(nib(s[i]) * 16 + nib(s[i + 1])));
  }
  return out;
}

PrgKey key_of(const std::vector<std::uint8_t>& b) {
  PrgKey k;
  std::memcpy(k.bytes, b.data(), 16);
  return k;
}

PrgKey fixed_key(std::uint8_t seed) {
  PrgKey k;
  for (int i = 0; i < 16; ++i) k.bytes[i] = static_cast<std::uint8_t>(seed * 31 + i * 7);
  return k;
}

// SP 800-38A, F.5.1 CTR-AES128.Encrypt and F.5.2 CTR-AES128.Decrypt.
const char* kNistKey = "2b7e151628aed2a6abf7158809cf4f3c";
const char* kNistOutput =
    "ec8cdf7398607cb0f2d21675ea9ea1e4362b7c3c6773516318a077d7fc5073ae"
    "6a2cc3787889374fbeb4c81b17ba6c44e89c399ff0f198c6d40a31db156cabfe";
const char* kNistPlain =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
const char* kNistCipher =
    "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
    "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee";
// Initial counter block f0f1...feff = stream f0f1f2f3f4f5f6f7, block f8f9fafbfcfdfeff.
constexpr std::uint64_t kNistStream = 0xf0f1f2f3f4f5f6f7ull;
constexpr std::uint64_t kNistBlock = 0xf8f9fafbfcfdfeffull;

TEST(MathPrg, KeystreamMatchesNistSp80038aCtrVectors) {
  Prg prg;
  ASSERT_TRUE(prg.init(key_of(hex(kNistKey))).ok());
  std::vector<std::uint8_t> ks(64);
  ASSERT_TRUE(prg.keystream(kNistStream, kNistBlock, ks.data(), ks.size()).ok());
  EXPECT_EQ(ks, hex(kNistOutput));  // the four AES output blocks
  const auto plain = hex(kNistPlain), cipher = hex(kNistCipher);
  for (std::size_t i = 0; i < 64; ++i) {
    EXPECT_EQ(static_cast<std::uint8_t>(plain[i] ^ ks[i]), cipher[i]) << "F.5.1 byte " << i;
    EXPECT_EQ(static_cast<std::uint8_t>(cipher[i] ^ ks[i]), plain[i]) << "F.5.2 byte " << i;
  }
  // Addressing: starting at block #3 gives the last two output blocks.
  std::vector<std::uint8_t> tail(32);
  ASSERT_TRUE(prg.keystream(kNistStream, kNistBlock + 2, tail.data(), tail.size()).ok());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), ks.begin() + 32));
}

TEST(MathPrg, AddressableAndDeterministic) {
  Prg a, b;
  ASSERT_TRUE(a.init(fixed_key(1)).ok());
  ASSERT_TRUE(b.init(fixed_key(1)).ok());
  std::vector<std::uint8_t> whole(16 * 1000), part(16 * 10), other(16 * 10);
  ASSERT_TRUE(a.keystream(prg_stream(3, 7), 0, whole.data(), whole.size()).ok());
  ASSERT_TRUE(b.keystream(prg_stream(3, 7), 500, part.data(), part.size()).ok());
  EXPECT_EQ(0, std::memcmp(part.data(), whole.data() + 16 * 500, part.size()));
  // Another stream, or another key, gives another keystream.
  ASSERT_TRUE(b.keystream(prg_stream(3, 8), 500, other.data(), other.size()).ok());
  EXPECT_NE(0, std::memcmp(part.data(), other.data(), part.size()));
  Prg c;
  ASSERT_TRUE(c.init(fixed_key(2)).ok());
  ASSERT_TRUE(c.keystream(prg_stream(3, 7), 500, other.data(), other.size()).ok());
  EXPECT_NE(0, std::memcmp(part.data(), other.data(), part.size()));
  // An uninitialised generator refuses to work.
  Prg unkeyed;
  EXPECT_FALSE(unkeyed.ready());
  EXPECT_EQ(unkeyed.keystream(0, 0, part.data(), 16).fault, Fault::invalid_argument);
}

// Wilson-Hilferty approximation of the chi-square quantile.
double chi2_quantile(double dof, double z) {
  const double c = 2.0 / (9.0 * dof);
  return dof * std::pow(1.0 - c + z * std::sqrt(c), 3.0);
}

TEST(MathPrg, MillionFieldElementsPassChiSquare) {
  Prg prg;
  ASSERT_TRUE(prg.init(fixed_key(42)).ok());
  const std::size_t n = 1000000;
  std::vector<std::uint64_t> v(n);
  ASSERT_TRUE(prg.uniform_mod_q(prg_stream(1, 0), v.data(), n).ok());
  const std::size_t bins = 1024;
  std::vector<double> high(bins, 0.0), low(bins, 0.0);
  for (std::uint64_t x : v) {
    ASSERT_LT(x, FieldQ::modulus);
    high[x >> 51] += 1;        // top 10 of 61 bits
    low[x & (bins - 1)] += 1;  // bottom 10 bits
  }
  const double expect = static_cast<double>(n) / bins;
  double chi_high = 0, chi_low = 0;
  for (std::size_t b = 0; b < bins; ++b) {
    chi_high += (high[b] - expect) * (high[b] - expect) / expect;
    chi_low += (low[b] - expect) * (low[b] - expect) / expect;
  }
  // Two-sided at p = 0.001 each: neither biased nor suspiciously flat.
  const double lo = chi2_quantile(bins - 1, -3.09), hi = chi2_quantile(bins - 1, 3.09);
  EXPECT_GT(chi_high, lo);
  EXPECT_LT(chi_high, hi);
  EXPECT_GT(chi_low, lo);
  EXPECT_LT(chi_low, hi);
}

TEST(MathPrg, RejectionSamplingNeverReachesTheBound) {
  Prg prg;
  ASSERT_TRUE(prg.init(fixed_key(9)).ok());
  const std::uint64_t bounds[] = {1,
                                  2,
                                  3,
                                  5,
                                  (std::uint64_t{1} << 32) + 1,
                                  FieldPb::modulus,
                                  FieldQ::modulus,
                                  (std::uint64_t{1} << 62) + 1,
                                  (std::uint64_t{1} << 63) + 1,
                                  ~std::uint64_t{0}};
  std::vector<std::uint64_t> v(200000);
  for (std::uint64_t bound : bounds) {
    ASSERT_TRUE(prg.uniform(prg_stream(2, static_cast<std::uint32_t>(bound)), 0, bound, v.data(),
                            v.size())
                    .ok());
    std::uint64_t mx = 0;
    for (std::uint64_t x : v) mx = x > mx ? x : mx;
    EXPECT_LT(mx, bound) << "bound " << bound;
  }
  // Bound 3 keeps 3 of 4 two-bit values: the three residues are equally likely.
  ASSERT_TRUE(prg.uniform(prg_stream(2, 99), 0, 3, v.data(), v.size()).ok());
  double count[3] = {0, 0, 0};
  for (std::uint64_t x : v) count[x] += 1;
  for (double c : count) EXPECT_NEAR(c / v.size(), 1.0 / 3.0, 0.006);
}

TEST(MathPrg, UniformIsRejectionOverTheKeystream) {
  // Replays the documented rule on the raw keystream: 8-byte little-endian
  // words, masked to bitlen(bound - 1) bits, kept if below the bound.
  Prg prg;
  ASSERT_TRUE(prg.init(fixed_key(5)).ok());
  const std::uint64_t bound = (std::uint64_t{1} << 62) + 1;  // about half rejected
  const std::uint64_t mask = (std::uint64_t{1} << 63) - 1;
  const std::size_t n = 3000;
  std::vector<std::uint8_t> ks(16 * 4000);
  ASSERT_TRUE(prg.keystream(prg_stream(4, 4), 10, ks.data(), ks.size()).ok());
  std::vector<std::uint64_t> want;
  for (std::size_t off = 0; want.size() < n; off += 8) {
    std::uint64_t w = 0;
    for (int b = 7; b >= 0; --b) w = (w << 8) | ks[off + b];
    if ((w & mask) < bound) want.push_back(w & mask);
  }
  std::vector<std::uint64_t> got(n);
  ASSERT_TRUE(prg.uniform(prg_stream(4, 4), 10, bound, got.data(), n).ok());
  EXPECT_EQ(got, want);
  // A shorter request is a prefix of a longer one (masks regenerate exactly).
  std::vector<std::uint64_t> shorter(100);
  ASSERT_TRUE(prg.uniform(prg_stream(4, 4), 10, bound, shorter.data(), shorter.size()).ok());
  EXPECT_TRUE(std::equal(shorter.begin(), shorter.end(), got.begin()));
  // For q a rejection has probability 2^-61: the output is the masked words.
  std::vector<std::uint64_t> fq(5000);
  ASSERT_TRUE(prg.uniform_mod_q(prg_stream(4, 5), fq.data(), fq.size()).ok());
  std::vector<std::uint8_t> ks_q(8 * fq.size());
  ASSERT_TRUE(prg.keystream(prg_stream(4, 5), 0, ks_q.data(), ks_q.size()).ok());
  for (std::size_t i = 0; i < fq.size(); ++i) {
    std::uint64_t w = 0;
    for (int b = 7; b >= 0; --b) w = (w << 8) | ks_q[8 * i + b];
    ASSERT_EQ(fq[i], w & FieldQ::modulus) << i;
  }
  // Every request size around the internal chunk agrees too.
  for (std::size_t len : {1, 2, 3, 490, 511, 512, 513, 2047, 2048, 2049, 2050}) {
    std::vector<std::uint64_t> part(len);
    ASSERT_TRUE(prg.uniform(prg_stream(4, 4), 10, bound, part.data(), len).ok());
    ASSERT_TRUE(std::equal(part.begin(), part.end(), got.begin())) << len;
  }
}

TEST(MathPrg, RejectsBadArguments) {
  Prg prg;
  std::uint64_t x;
  EXPECT_EQ(prg.uniform_mod_q(0, &x, 1).fault, Fault::invalid_argument);  // not keyed
  ASSERT_TRUE(prg.init(fixed_key(1)).ok());
  EXPECT_EQ(prg.uniform(0, 0, 0, &x, 1).fault, Fault::invalid_argument);  // bound 0
  EXPECT_EQ(prg.uniform(0, 0, 7, nullptr, 1).fault, Fault::invalid_argument);
  EXPECT_TRUE(prg.uniform(0, 0, 7, nullptr, 0).ok());
}

}  // namespace
}  // namespace math
}  // namespace veil
