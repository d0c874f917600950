// The fixed-point codec: round-half-even, saturation counting, round trips.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "math/fixed_point.h"
#include "forced_kernel_path.h"
#include "math_test_util.h"

namespace veil {
namespace math {
namespace {

TEST(MathFixedPoint, RoundsHalfToEven) {
  const FixedFormat f0{0, 1000.0};
  const double in[] = {0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 0.49999999999999994, 2.5000000000000004,
                       -7.5, 7.25, -7.75};
  const double want[] = {0, 2, 2, 4, 0, -2, -2, 0, 3, -8, 7, -8};
  for (std::size_t i = 0; i < sizeof(in) / sizeof(in[0]); ++i) {
    bool sat = true;
    const double q = testing_util::quantize_one(in[i], f0, &sat);
    EXPECT_EQ(q, want[i]) << in[i];
    if (q == 0) EXPECT_FALSE(std::signbit(q)) << "no negative zero for " << in[i];
    EXPECT_FALSE(sat);
  }
  // At f = 8 a tie sits at an odd multiple of 2^-9.
  const FixedFormat f8{8, 100.0};
  EXPECT_EQ(testing_util::quantize_one(3.0 / 512, f8, nullptr), 2.0);   // 1.5 -> 2
  EXPECT_EQ(testing_util::quantize_one(5.0 / 512, f8, nullptr), 2.0);   // 2.5 -> 2
  EXPECT_EQ(testing_util::quantize_one(-5.0 / 512, f8, nullptr), -2.0);
}

TEST(MathFixedPoint, RoundTripErrorWithinHalfUlp) {
  std::mt19937_64 rng(8);
  for (int f : {0, 1, 4, 8, 12, 20, 30, 40}) {
    const FixedFormat fmt{f, 64.0};
    const double limit = fixed_limit(fmt);
    ASSERT_EQ(limit, std::ldexp(64.0, f));
    const double bound = std::ldexp(1.0, -(f + 1));
    std::uniform_real_distribution<double> d(-64.0, 64.0);
    std::vector<double> x(20000), q(x.size());
    for (auto& v : x) v = d(rng);
    x[0] = 64.0;
    x[1] = -64.0;
    x[2] = 0.0;
    x[3] = std::ldexp(1.0, -f - 1);  // a tie
    const PassResult r = quantize(x.data(), 1, x.size(), x.size(), fmt, q.data(), q.size());
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.saturated, 0u) << "f=" << f;
    for (std::size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(q[i], std::nearbyint(q[i]));
      ASSERT_LE(std::fabs(q[i]), limit);
      ASSERT_LE(std::fabs(std::ldexp(q[i], -f) - x[i]), bound) << "f=" << f << " x=" << x[i];
    }
  }
}

TEST(MathFixedPoint, SaturationIsCountedAndClipped) {
  const FixedFormat fmt{8, 2.0};  // limit 512
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Row-major 2 x 4 inside a 2 x 5 buffer (ld 5): the fifth column is ignored.
  const std::vector<double> x = {1.0, 2.0, 2.001, -3.0, 99.0,
                                 inf, -inf, nan, 2.0 + 1.0 / 1024, 99.0};
  std::vector<double> q(2 * 6, -1.0);
  const PassResult r = quantize(x.data(), 2, 4, 5, fmt, q.data(), 6);
  ASSERT_TRUE(r.status.ok());
  // 2.001 -> 512.256 rounds to 512 (fits); -3, +inf, -inf, NaN saturate;
  // 2 + 2^-10 -> 512.5 rounds (half-even) to 512, which fits.
  EXPECT_EQ(r.saturated, 4u);
  const double want[] = {256, 512, 512, -512, 512, -512, 0, 512};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(q[i * 6 + j], want[i * 4 + j]) << i << "," << j;
  EXPECT_EQ(q[4], -1.0);  // untouched padding
  bool sat = false;
  EXPECT_EQ(testing_util::quantize_one(2.0 + 3.0 / 1024, fmt, &sat), 512.0);  // 512.75 -> 513 -> clipped
  EXPECT_TRUE(sat);
}

// The magnitudes a quantizing pass reports, computed the plain way from its output.
OperandStats reference_stats(const std::vector<double>& q, std::size_t rows, std::size_t cols,
                             std::size_t ld, std::vector<double>* col_l1) {
  OperandStats st;
  col_l1->assign(cols, 0.0);
  for (std::size_t i = 0; i < rows; ++i) {
    double row = 0;
    for (std::size_t j = 0; j < cols; ++j) {
      const double a = std::fabs(q[i * ld + j]);
      row += a;
      (*col_l1)[j] += a;
      st.max_abs = std::max(st.max_abs, a);
    }
    st.row_l1_max = std::max(st.row_l1_max, row);
  }
  return st;
}

// Every kernel path quantizes to the same bits, counts the same saturations
// and reports the same magnitudes: ties, NaN, infinities, -0, ragged rows.
TEST(MathFixedPoint, QuantizeIsBitIdenticalAcrossPaths) {
  testing_util::PathGuard guard;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> d(-10, 10);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (std::size_t cols : {1, 3, 4, 7, 8, 9, 33, 1030}) {
    const std::size_t rows = 5, ldx = cols + 2, ldo = cols + 1;
    std::vector<double> x(rows * ldx);
    for (auto& v : x) v = d(rng);
    // Exact ties of the 2^8 grid (k + 0.5) / 256, and the special values.
    for (std::size_t k = 0; k < x.size(); k += 5) x[k] = (std::floor(d(rng) * 256) + 0.5) / 256;
    const double special[] = {nan, inf, -inf, -0.0, 7.998046875, -8.0, 8.0 + 1.0 / 512, 1e300};
    for (std::size_t k = 0; k < 8; ++k) x[(k * 7 + 2) % x.size()] = special[k];
    for (FixedFormat fmt : {FixedFormat{8, 8.0}, FixedFormat{0, 3.0}, FixedFormat{12, 0.25}}) {
      std::vector<double> q0;
      std::size_t sat0 = 0;
      for (KernelPath p : testing_util::supported_paths()) {
        ASSERT_TRUE(force_kernel_path(p));
        std::vector<double> q(rows * ldo, -7.0), col;
        OperandStats st;
        std::vector<double> col_l1(cols, 99.0);  // overwritten, not added to
        st.col_l1 = col_l1.data();
        const PassResult r = quantize(x.data(), rows, cols, ldx, fmt, q.data(), ldo, &st);
        ASSERT_TRUE(r.status.ok());
        const PassResult plain = quantize(x.data(), rows, cols, ldx, fmt, q.data(), ldo);
        EXPECT_EQ(plain.saturated, r.saturated);
        const OperandStats want = reference_stats(q, rows, cols, ldo, &col);
        const char* name = kernel_path_name(p);
        EXPECT_EQ(st.max_abs, want.max_abs) << name << " cols " << cols;
        EXPECT_EQ(st.row_l1_max, want.row_l1_max) << name << " cols " << cols;  // exact here
        EXPECT_EQ(col_l1, col) << name << " cols " << cols;
        std::size_t non_finite = 0;
        for (std::size_t i = 0; i < rows; ++i)
          for (std::size_t j = 0; j < cols; ++j) non_finite += !std::isfinite(x[i * ldx + j]);
        EXPECT_EQ(st.non_finite, non_finite) << name << " cols " << cols;
        for (std::size_t i = 0; i < rows; ++i) EXPECT_EQ(q[i * ldo + cols], -7.0);  // padding kept
        if (q0.empty()) {
          q0 = q;
          sat0 = r.saturated;
          continue;
        }
        EXPECT_EQ(std::memcmp(q.data(), q0.data(), q.size() * sizeof(double)), 0)
            << name << " cols " << cols;
        EXPECT_EQ(r.saturated, sat0) << name << " cols " << cols;
      }
    }
  }
}

// Quantizing into float32 (a narrow operand) gives the float64 output's
// values, saturation count and magnitudes, on every kernel path.
class MathFixedPointPaths : public testing_util::MathPathTest {};

TEST_P(MathFixedPointPaths, QuantizeToNarrowMatchesDouble) {
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> d(-10, 10);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // The last format has the largest limit a narrow output allows: 2^23 - 1.
  const FixedFormat formats[] = {FixedFormat{8, 8.0}, FixedFormat{0, 3.0}, FixedFormat{12, 0.25},
                                 FixedFormat{20, 7.999999}, FixedFormat{0, 8388607.5}};
  for (std::size_t cols : {1, 3, 4, 7, 8, 9, 33, 513, 1030}) {
    const std::size_t rows = 5, ldx = cols + 2, ldo = cols + 1;
    std::vector<double> x(rows * ldx);
    for (auto& v : x) v = d(rng);
    for (std::size_t k = 0; k < x.size(); k += 5) x[k] = (std::floor(d(rng) * 256) + 0.5) / 256;
    const double special[] = {nan, inf, -inf, -0.0, 7.998046875, -8.0, 8.0 + 1.0 / 512, 1e300};
    for (std::size_t k = 0; k < 8; ++k) x[(k * 7 + 2) % x.size()] = special[k];
    for (FixedFormat fmt : formats) {
      ASSERT_LT(fixed_limit(fmt), 8388608.0);
      if (fmt.frac_bits == 0 && fmt.clip > 1e6) {
        for (std::size_t k = 1; k < x.size(); k += 9) x[k] = d(rng) * 1e6;  // reach the limit
      }
      const std::string where =
          "cols " + std::to_string(cols) + " f " + std::to_string(fmt.frac_bits);
      std::vector<double> qd(rows * ldo, -7.0), col_d(cols, 99.0);
      std::vector<float> qn(rows * ldo, -7.0f);
      std::vector<double> col_n(cols, 99.0);
      OperandStats sd, sn;
      sd.col_l1 = col_d.data();
      sn.col_l1 = col_n.data();
      const PassResult rd = quantize(x.data(), rows, cols, ldx, fmt, qd.data(), ldo, &sd);
      const PassResult rn = quantize(x.data(), rows, cols, ldx, fmt, qn.data(), ldo, &sn);
      ASSERT_TRUE(rd.status.ok());
      ASSERT_TRUE(rn.status.ok()) << where;
      EXPECT_EQ(rn.saturated, rd.saturated) << where;
      EXPECT_GT(rn.saturated, 0u) << where;  // NaN and the infinities at least
      // The float64 output converted is the narrow output, padding included.
      const std::vector<float> want(qd.begin(), qd.end());
      EXPECT_EQ(std::memcmp(qn.data(), want.data(), qn.size() * sizeof(float)), 0) << where;
      EXPECT_EQ(sn.max_abs, sd.max_abs) << where;
      EXPECT_EQ(sn.row_l1_max, sd.row_l1_max) << where;
      EXPECT_EQ(sn.non_finite, sd.non_finite) << where;
      EXPECT_EQ(std::memcmp(col_n.data(), col_d.data(), cols * sizeof(double)), 0) << where;
      // Without stats: the same values and count.
      std::vector<float> qn2(rows * ldo, -7.0f);
      const PassResult rn2 = quantize(x.data(), rows, cols, ldx, fmt, qn2.data(), ldo);
      EXPECT_EQ(rn2.saturated, rd.saturated) << where;
      EXPECT_EQ(std::memcmp(qn2.data(), want.data(), qn2.size() * sizeof(float)), 0) << where;
    }
  }
}

TEST_P(MathFixedPointPaths, QuantizeToNarrowRejectsWideFormatsAndBadShapes) {
  const double x[4] = {1.0, -2.0, 3.0, 0.5};
  float out[4] = {-7.0f, -7.0f, -7.0f, -7.0f};
  // Limits of 2^23 and more could produce values that are not narrow.
  for (FixedFormat fmt : {FixedFormat{0, 8388608.0}, FixedFormat{8, 32768.0}, FixedFormat{30, 1.0},
                          FixedFormat{60, 1e6}}) {
    ASSERT_GE(fixed_limit(fmt), 8388608.0);
    EXPECT_EQ(quantize(x, 2, 2, 2, fmt, out, 2).status.fault, Fault::invalid_argument)
        << fmt.frac_bits << " " << fmt.clip;
    EXPECT_EQ(quantize(x, 0, 2, 2, fmt, out, 2).status.fault, Fault::invalid_argument);
  }
  EXPECT_EQ(out[0], -7.0f);  // nothing written
  EXPECT_TRUE(quantize(x, 2, 2, 2, FixedFormat{0, 8388607.0}, out, 2).status.ok());
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(quantize(x, 2, 2, 2, FixedFormat{8, -1.0}, out, 2).status.fault,
            Fault::invalid_argument);
  EXPECT_EQ(quantize(x, 2, 2, 1, FixedFormat{8, 1.0}, out, 2).status.fault,
            Fault::invalid_argument);  // ldx < cols
  EXPECT_EQ(quantize(x, 2, 2, 2, FixedFormat{8, 1.0}, out, 1).status.fault,
            Fault::invalid_argument);  // ldo < cols
  EXPECT_EQ(quantize(x, 2, 2, 2, FixedFormat{8, 1.0}, static_cast<float*>(nullptr), 2).status.fault,
            Fault::invalid_argument);
  // An empty matrix is valid and starts the stats afresh.
  OperandStats st;
  st.max_abs = 5;
  EXPECT_TRUE(quantize(x, 0, 2, 2, FixedFormat{8, 1.0}, out, 2, &st).status.ok());
  EXPECT_EQ(st.max_abs, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Paths, MathFixedPointPaths, ::testing::ValuesIn(testing_util::all_paths()),
                         testing_util::path_param_name);

TEST(MathFixedPoint, LimitAndValidation) {
  EXPECT_EQ(fixed_limit(FixedFormat{8, 8.0}), 2048.0);
  EXPECT_EQ(fixed_limit(FixedFormat{8, 8.001}), 2048.0);  // floor
  EXPECT_EQ(fixed_limit(FixedFormat{60, 1e6}), 9007199254740991.0);  // capped at 2^53 - 1
  EXPECT_EQ(fixed_limit(FixedFormat{8, 0.0}), -1.0);
  EXPECT_EQ(fixed_limit(FixedFormat{63, 1.0}), -1.0);
  EXPECT_FALSE(fixed_format_valid(FixedFormat{-1, 1.0}));
  double out = 0;
  const double in = 1.0;
  EXPECT_EQ(quantize(&in, 1, 1, 1, FixedFormat{8, -1.0}, &out, 1).status.fault,
            Fault::invalid_argument);
  EXPECT_EQ(quantize(&in, 2, 2, 1, FixedFormat{8, 1.0}, &out, 2).status.fault,
            Fault::invalid_argument);  // ld < cols
}

}  // namespace
}  // namespace math
}  // namespace veil
