#pragma once
// Shared helpers of the math test suites: deterministic random data, 128-bit
// reference arithmetic, and a fixture that forces one kernel path.

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "math/activation.h"
#include "math/field.h"
#include "math/fixed_point.h"
#include "forced_kernel_path.h"

namespace veil {
namespace math {
namespace testing_util {

using u128 = veil::math::u128;

// Reference reduction by 128-bit division: independent of the shift tricks.
inline std::uint64_t ref_mod(u128 x, std::uint64_t m) { return static_cast<std::uint64_t>(x % m); }

inline std::uint64_t ref_mod_signed(__int128 x, std::uint64_t m) {
  __int128 r = x % static_cast<__int128>(m);
  if (r < 0) r += m;
  return static_cast<std::uint64_t>(r);
}

// "relu", ...: an activation's name for test messages.
inline const char* activation_name(Activation act) {
  switch (act) {
    case Activation::identity: return "identity";
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::arctan: return "arctan";
    case Activation::softplus: return "softplus";
  }
  return "unknown";
}

// One value through quantize() (a 1 x 1 matrix): the reference for passes that
// quantize as they go. *saturated (if non-null) says whether it was clipped or NaN.
inline double quantize_one(double x, FixedFormat fmt, bool* saturated) {
  double q = 0;
  const PassResult r = quantize(&x, 1, 1, 1, fmt, &q, 1);
  EXPECT_TRUE(r.status.ok());
  if (saturated != nullptr) *saturated = r.saturated != 0;
  return q;
}

// a^e in field F by square-and-multiply.
template <class F>
std::uint64_t pow_mod(std::uint64_t a, std::uint64_t e) {
  std::uint64_t r = 1;
  for (; e != 0; e >>= 1, a = F::mul(a, a))
    if (e & 1) r = F::mul(r, a);
  return r;
}

// Reference x * v mod q of an integer-valued double matrix row by row.
inline std::vector<std::uint64_t> ref_matvec(const std::vector<double>& x, std::size_t rows,
                                             std::size_t cols, std::size_t ld,
                                             const std::vector<std::uint64_t>& v) {
  std::vector<std::uint64_t> out(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    std::uint64_t acc = 0;
    for (std::size_t j = 0; j < cols; ++j) {
      const __int128 p = static_cast<__int128>(static_cast<std::int64_t>(x[i * ld + j])) * v[j];
      acc = static_cast<std::uint64_t>((static_cast<u128>(acc) + ref_mod_signed(p, FieldQ::modulus)) %
                                       FieldQ::modulus);
    }
    out[i] = acc;
  }
  return out;
}

inline std::vector<std::uint64_t> ref_matvec_t(const std::vector<double>& x, std::size_t rows,
                                               std::size_t cols, std::size_t ld,
                                               const std::vector<std::uint64_t>& y) {
  std::vector<std::uint64_t> out(cols, 0);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      const __int128 p = static_cast<__int128>(static_cast<std::int64_t>(x[i * ld + j])) * y[i];
      out[j] = static_cast<std::uint64_t>(
          (static_cast<u128>(out[j]) + ref_mod_signed(p, FieldQ::modulus)) % FieldQ::modulus);
    }
  }
  return out;
}

inline std::vector<std::uint64_t> random_field(std::mt19937_64& rng, std::size_t n,
                                               std::uint64_t modulus = FieldQ::modulus) {
  std::uniform_int_distribution<std::uint64_t> d(0, modulus - 1);
  std::vector<std::uint64_t> v(n);
  for (auto& e : v) e = d(rng);
  return v;
}

// Integer-valued doubles in [-bound, bound].
inline std::vector<double> random_ints(std::mt19937_64& rng, std::size_t n, std::int64_t bound) {
  std::uniform_int_distribution<std::int64_t> d(-bound, bound);
  std::vector<double> v(n);
  for (auto& e : v) e = static_cast<double>(d(rng));
  return v;
}

// Exact C = A * B for small integer matrices (row-major, dense).
inline std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b,
                                  std::size_t rows, std::size_t inner, std::size_t cols) {
  std::vector<double> c(rows * cols, 0.0);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t k = 0; k < inner; ++k)
      for (std::size_t j = 0; j < cols; ++j) c[i * cols + j] += a[i * inner + k] * b[k * cols + j];
  return c;
}

inline const std::vector<KernelPath>& all_paths() {
  static const std::vector<KernelPath> p = {KernelPath::portable, KernelPath::avx2,
                                            KernelPath::avx512};
  return p;
}

inline std::vector<KernelPath> supported_paths() {
  std::vector<KernelPath> out;
  for (KernelPath p : all_paths())
    if (kernel_path_supported(p)) out.push_back(p);
  return out;
}

// Restores automatic dispatch when a test that forced a path ends.
struct PathGuard {
  ~PathGuard() { release_kernel_path(); }
};

// Fixture for suites run once per kernel path; unsupported paths are skipped.
class MathPathTest : public ::testing::TestWithParam<KernelPath> {
 protected:
  void SetUp() override {
    if (!kernel_path_supported(GetParam())) {
      GTEST_SKIP() << "kernel path " << kernel_path_name(GetParam()) << " not available on this CPU";
    }
    ASSERT_TRUE(force_kernel_path(GetParam()));
  }
  void TearDown() override { release_kernel_path(); }
};

inline std::string path_param_name(const ::testing::TestParamInfo<KernelPath>& info) {
  return kernel_path_name(info.param);
}

}  // namespace testing_util
}  // namespace math
}  // namespace veil
