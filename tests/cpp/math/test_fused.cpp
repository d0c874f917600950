// The fused forward/backward passes: agreement with a straightforward
// reference, bit-identical results across kernel paths, fault reporting, and
// one verified training step of a two-layer network with linear fingerprints.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "math/activation.h"
#include "math/fixed_point.h"
#include "math/freivalds.h"
#include "math/fused.h"
#include "math/loss.h"
#include "math_test_util.h"

namespace veil {
namespace math {
namespace {

using namespace testing_util;

const Activation kAll[] = {Activation::identity, Activation::relu, Activation::sigmoid,
                           Activation::arctan, Activation::softplus};

// Device-like data: integers at scale 2^scale, mostly moderate, some huge,
// and some exact ties of the 2^8 output grid (low bits 0x80 at scale 16).
std::vector<double> device_result(std::mt19937_64& rng, std::size_t n) {
  std::vector<double> v = random_ints(rng, n, std::int64_t{1} << 22);
  for (std::size_t k = 0; k < n; k += 13) v[k] = static_cast<double>((static_cast<std::int64_t>(rng() % 4096) - 2048) * 256 + 128);
  for (std::size_t k = 5; k < n; k += 97) v[k] = static_cast<double>(static_cast<std::int64_t>(rng() >> 11) - (std::int64_t{1} << 52));
  if (n > 3) v[3] = -0.0;
  return v;
}

struct FwdOut {
  PassResult res;
  std::vector<double> z, a;  // a: a_next, or a_next_narrow widened
  std::vector<float> a_narrow;  // a_next_narrow as written, when used
  std::vector<std::uint64_t> sums;
  OperandStats stats;
  std::vector<double> col_l1;
  std::vector<std::uint64_t> next_v[2], next_dots[2];
  std::vector<std::uint8_t> mask;  // relu_mask, ld kMaskPad more than cols, when used
};

// Bytes of padding after each row of a relu mask, and the value they and any
// unwritten byte hold: neither 0 nor 1.
constexpr std::size_t kMaskPad = 3;
constexpr std::uint8_t kMaskFill = 0xcd;

FwdOut run_forward(const std::vector<double>& zdev, std::size_t rows, std::size_t cols, int scale,
                   const std::vector<std::uint64_t>& s, const std::vector<std::uint64_t>* expected,
                   Activation act, FixedFormat fmt, bool with_stats = true, bool narrow = false,
                   bool with_z = true, bool with_mask = false) {
  FwdOut o;
  o.col_l1.assign(cols, 99.0);
  o.stats.col_l1 = o.col_l1.data();
  o.z.assign(rows * cols, -7.0);
  o.a.assign(rows * (cols + 1), -7.0);
  if (narrow) o.a_narrow.assign(rows * (cols + 1), -7.0f);
  o.sums.assign(rows, 0);
  ForwardArgs f;
  f.z = zdev.data();
  f.rows = rows;
  f.cols = cols;
  f.ld_z = cols;
  f.scale = scale;
  f.s = s.data();
  f.expected = expected != nullptr ? expected->data() : nullptr;
  f.row_sums = o.sums.data();
  f.act = act;
  if (with_z) {
    f.z_real = o.z.data();
    f.ld_z_real = cols;
  }
  if (with_mask) {
    o.mask.assign(rows * (cols + kMaskPad), kMaskFill);
    f.relu_mask = o.mask.data();
    f.ld_relu_mask = cols + kMaskPad;
  }
  if (narrow) f.a_next_narrow = o.a_narrow.data();
  else f.a_next = o.a.data();
  f.ld_a_next = cols + 1;
  f.a_format = fmt;
  f.a_stats = with_stats ? &o.stats : nullptr;
  // The next layer's vectors (the same on every path), dotted with a_next.
  std::mt19937_64 vrng(cols);
  std::vector<double> scratch(6 * cols);
  for (int r = 0; r < 2; ++r) {
    o.next_v[r] = random_field(vrng, cols);
    o.next_dots[r].assign(rows, 7);
    f.next_v[r] = o.next_v[r].data();
    f.next_dots[r] = o.next_dots[r].data();
  }
  f.next_scratch = scratch.data();
  o.res = fused_forward(f);
  if (narrow) o.a.assign(o.a_narrow.begin(), o.a_narrow.end());
  return o;
}

struct BwdOut {
  PassResult res;
  std::vector<double> g;  // dz_prev, or dz_prev_narrow widened
  std::vector<float> g_narrow;  // dz_prev_narrow as written, when used
  std::vector<std::uint64_t> sums;
  OperandStats stats;
  std::vector<double> col_l1;
};

BwdOut run_backward(const std::vector<double>& da, std::size_t rows, std::size_t cols, int scale,
                    const std::vector<std::uint64_t>& t, const std::vector<std::uint64_t>* expected,
                    Activation act, const std::vector<double>& zprev, FixedFormat fmt,
                    bool with_stats = true, bool narrow = false,
                    const std::vector<std::uint8_t>* mask_prev = nullptr,
                    std::size_t ld_mask_prev = 0) {
  BwdOut o;
  o.col_l1.assign(cols - 1, 99.0);
  o.stats.col_l1 = o.col_l1.data();
  o.g.assign(rows * (cols - 1), -7.0);
  if (narrow) o.g_narrow.assign(rows * (cols - 1), -7.0f);
  o.sums.assign(rows, 0);
  BackwardArgs b;
  b.da = da.data();
  b.rows = rows;
  b.cols = cols;
  b.ld_da = cols;
  b.scale = scale;
  b.t = t.data();
  b.expected = expected != nullptr ? expected->data() : nullptr;
  b.row_sums = o.sums.data();
  b.act = act;
  if (mask_prev != nullptr) {  // instead of z_prev
    b.relu_mask_prev = mask_prev->data();
    b.ld_relu_mask_prev = ld_mask_prev;
  } else {
    b.z_prev = zprev.data();
    b.ld_z_prev = cols - 1;
  }
  b.out_cols = cols - 1;
  if (narrow) b.dz_prev_narrow = o.g_narrow.data();
  else b.dz_prev = o.g.data();
  b.ld_dz_prev = cols - 1;
  b.g_format = fmt;
  b.dz_stats = with_stats ? &o.stats : nullptr;
  o.res = fused_backward(b);
  if (narrow) o.g.assign(o.g_narrow.begin(), o.g_narrow.end());
  return o;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// What OperandStats must hold for a quantized output (row-major, ld), computed
// the plain way; column sums add in row order, as the kernels promise.
void expect_stats(const OperandStats& st, const std::vector<double>& col_l1,
                  const std::vector<double>& q, std::size_t rows, std::size_t cols,
                  std::size_t ld, const char* what) {
  std::vector<double> col(cols, 0.0);
  double row_max = 0, max_abs = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    double row = 0;
    for (std::size_t j = 0; j < cols; ++j) {
      const double a = std::fabs(q[i * ld + j]);
      row += a;
      col[j] += a;
      max_abs = std::max(max_abs, a);
    }
    row_max = std::max(row_max, row);
  }
  EXPECT_EQ(st.max_abs, max_abs) << what;
  EXPECT_EQ(st.row_l1_max, row_max) << what;  // the tests' limits keep every sum exact
  EXPECT_TRUE(std::memcmp(col.data(), col_l1.data(), cols * sizeof(double)) == 0) << what;
}

class MathFused : public MathPathTest {};

TEST_P(MathFused, ForwardMatchesReference) {
  std::mt19937_64 rng(11);
  const FixedFormat fmt{8, 8.0};
  const int scale = 16;
  const std::size_t shapes[][2] = {{1, 1}, {3, 7}, {5, 64}, {2, 1500}, {33, 129}};
  for (const auto& sh : shapes) {
    const std::size_t rows = sh[0], cols = sh[1];
    const std::vector<double> zdev = device_result(rng, rows * cols);
    const std::vector<std::uint64_t> s = random_field(rng, cols);
    const std::vector<std::uint64_t> want_sums = ref_matvec(zdev, rows, cols, cols, s);
    for (Activation act : kAll) {
      const FwdOut o = run_forward(zdev, rows, cols, scale, s, &want_sums, act, fmt);
      ASSERT_TRUE(o.res.status.ok()) << activation_name(act);
      EXPECT_EQ(o.sums, want_sums);
      std::size_t sat = 0;
      for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t j = 0; j < cols; ++j) {
          const double z = std::ldexp(zdev[i * cols + j], -scale);
          bool st = false;
          const double a = quantize_one(activate(act, z), fmt, &st);
          sat += st;
          ASSERT_EQ(o.z[i * cols + j], z);
          ASSERT_EQ(o.a[i * (cols + 1) + j], a) << activation_name(act) << " z=" << z;
        }
        EXPECT_EQ(o.a[i * (cols + 1) + cols], -7.0) << "bias column must be left to the caller";
      }
      EXPECT_EQ(o.res.saturated, sat) << activation_name(act);
    }
  }
}

TEST_P(MathFused, BackwardMatchesReference) {
  std::mt19937_64 rng(12);
  const FixedFormat fmt{12, 4.0};
  const int scale = 20;
  const std::size_t shapes[][2] = {{1, 2}, {4, 9}, {3, 513}, {7, 1030}};
  for (const auto& sh : shapes) {
    const std::size_t rows = sh[0], cols = sh[1];
    const std::vector<double> da = device_result(rng, rows * cols);
    std::vector<double> zprev(rows * (cols - 1));
    std::uniform_real_distribution<double> d(-6, 6);
    for (auto& z : zprev) z = d(rng);
    zprev[0] = 0.0;
    const std::vector<std::uint64_t> t = random_field(rng, cols);
    const std::vector<std::uint64_t> want = ref_matvec(da, rows, cols, cols, t);
    for (Activation act : kAll) {
      const BwdOut o = run_backward(da, rows, cols, scale, t, &want, act, zprev, fmt);
      ASSERT_TRUE(o.res.status.ok());
      EXPECT_EQ(o.sums, want);
      std::size_t sat = 0;
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j + 1 < cols; ++j) {
          const double g = std::ldexp(da[i * cols + j], -scale) *
                           activation_derivative(act, zprev[i * (cols - 1) + j]);
          bool st = false;
          const double q = quantize_one(g, fmt, &st);
          sat += st;
          ASSERT_EQ(o.g[i * (cols - 1) + j], q) << activation_name(act);
        }
      EXPECT_EQ(o.res.saturated, sat);
    }
  }
}

TEST_P(MathFused, ReportsFaultsAndMismatches) {
  std::mt19937_64 rng(13);
  const std::size_t rows = 6, cols = 600;
  std::vector<double> zdev = device_result(rng, rows * cols);
  const std::vector<std::uint64_t> s = random_field(rng, cols);
  std::vector<std::uint64_t> want = ref_matvec(zdev, rows, cols, cols, s);
  const FixedFormat fmt{8, 8.0};
  want[2] = FieldQ::add(want[2], 1);
  FwdOut o = run_forward(zdev, rows, cols, 16, s, &want, Activation::relu, fmt);
  EXPECT_EQ(o.res.status.fault, Fault::mismatch);
  EXPECT_EQ(o.res.status.row, 2u);
  zdev[4 * cols + 555] = std::numeric_limits<double>::quiet_NaN();
  o = run_forward(zdev, rows, cols, 16, s, &want, Activation::sigmoid, fmt);
  EXPECT_EQ(o.res.status.fault, Fault::not_finite);
  EXPECT_EQ(o.res.status.row, 4u);
  EXPECT_EQ(o.res.status.col, 555u);
  zdev[1 * cols + 3] = 1.5;
  o = run_forward(zdev, rows, cols, 16, s, nullptr, Activation::identity, fmt);
  EXPECT_EQ(o.res.status.fault, Fault::not_integral);
  EXPECT_EQ(o.res.status.row, 1u);
  EXPECT_EQ(o.res.status.col, 3u);
  // Backward: the bias column is checked too, though it is not emitted.
  std::vector<double> da = device_result(rng, rows * cols);
  std::vector<double> zprev(rows * (cols - 1), 1.0);
  const std::vector<std::uint64_t> t = random_field(rng, cols);
  da[5 * cols + cols - 1] = 9007199254740992.0;
  const BwdOut b = run_backward(da, rows, cols, 20, t, nullptr, Activation::relu, zprev, FixedFormat{12, 4.0});
  EXPECT_EQ(b.res.status.fault, Fault::out_of_range);
  EXPECT_EQ(b.res.status.row, 5u);
  EXPECT_EQ(b.res.status.col, cols - 1);
  // Invalid arguments.
  ForwardArgs bad;
  bad.z = zdev.data();
  bad.rows = 2;
  bad.cols = 4;
  bad.ld_z = 3;
  bad.s = s.data();
  EXPECT_EQ(fused_forward(bad).status.fault, Fault::invalid_argument);
}

// ---- Narrow outputs (a_next_narrow, dz_prev_narrow) ----------------------

// The float32 narrowing of a float64 output, to compare bit for bit.
std::vector<float> narrowed(const std::vector<double>& x) {
  return std::vector<float>(x.begin(), x.end());
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool same_stats(const OperandStats& a, const std::vector<double>& col_a, const OperandStats& b,
                const std::vector<double>& col_b) {
  return a.max_abs == b.max_abs && a.row_l1_max == b.row_l1_max &&
         a.non_finite == b.non_finite && col_a.size() == col_b.size() &&
         std::memcmp(col_a.data(), col_b.data(), col_a.size() * sizeof(double)) == 0;
}

// Formats a narrow output allows, up to the largest limit (2^23 - 1), with
// saturation at each; the shapes cross the 512-column chunks with ragged tails.
const FixedFormat kNarrowFormats[] = {FixedFormat{8, 8.0}, FixedFormat{12, 0.5},
                                      FixedFormat{4, 1e4}, FixedFormat{0, 8388607.0}};
const std::size_t kNarrowShapes[][2] = {{1, 1}, {3, 7}, {2, 512}, {9, 1037}};

TEST_P(MathFused, ForwardNarrowOutputMatchesDouble) {
  std::mt19937_64 rng(16);
  for (const auto& sh : kNarrowShapes) {
    const std::size_t rows = sh[0], cols = sh[1];
    const std::vector<double> zdev = device_result(rng, rows * cols);
    const std::vector<std::uint64_t> s = random_field(rng, cols);
    std::vector<std::uint64_t> want = ref_matvec(zdev, rows, cols, cols, s);
    want[rows / 2] = FieldQ::add(want[rows / 2], 1);  // the mismatch is reported the same way
    for (Activation act : kAll) {
      for (FixedFormat fmt : kNarrowFormats) {
        const std::string where = std::string(activation_name(act)) + " " + std::to_string(rows) +
                                  "x" + std::to_string(cols) + " f" + std::to_string(fmt.frac_bits);
        const FwdOut d = run_forward(zdev, rows, cols, 16, s, &want, act, fmt);
        const FwdOut n = run_forward(zdev, rows, cols, 16, s, &want, act, fmt, true, true);
        EXPECT_EQ(d.res.status.fault, Fault::mismatch) << where;
        EXPECT_EQ(n.res.status.fault, d.res.status.fault) << where;
        EXPECT_EQ(n.res.status.row, d.res.status.row) << where;
        EXPECT_EQ(n.res.saturated, d.res.saturated) << where;
        EXPECT_TRUE(same_bits(n.a_narrow, narrowed(d.a))) << where;  // bias column untouched too
        EXPECT_TRUE(same_bits(n.z, d.z)) << where;
        EXPECT_EQ(n.sums, d.sums) << where;
        EXPECT_TRUE(same_stats(n.stats, n.col_l1, d.stats, d.col_l1)) << where;
        for (int r = 0; r < 2; ++r) {
          EXPECT_EQ(n.next_dots[r], d.next_dots[r]) << where;
          EXPECT_EQ(n.next_dots[r], ref_matvec(d.a, rows, cols, cols + 1, n.next_v[r])) << where;
        }
      }
    }
  }
}

TEST_P(MathFused, BackwardNarrowOutputMatchesDouble) {
  std::mt19937_64 rng(17);
  for (const auto& sh : kNarrowShapes) {
    const std::size_t rows = sh[0], cols = sh[1] + 1;  // + the bias column, checked not emitted
    const std::vector<double> da = device_result(rng, rows * cols);
    std::vector<double> zprev(rows * (cols - 1));
    std::uniform_real_distribution<double> d(-6, 6);
    for (auto& z : zprev) z = d(rng);
    for (std::size_t k = 0; k < zprev.size(); k += 11) zprev[k] = 0.0;
    const std::vector<std::uint64_t> t = random_field(rng, cols);
    const std::vector<std::uint64_t> want = ref_matvec(da, rows, cols, cols, t);
    for (Activation act : kAll) {
      for (FixedFormat fmt : kNarrowFormats) {
        const std::string where = std::string(activation_name(act)) + " " + std::to_string(rows) +
                                  "x" + std::to_string(cols) + " f" + std::to_string(fmt.frac_bits);
        const BwdOut g = run_backward(da, rows, cols, 20, t, &want, act, zprev, fmt);
        const BwdOut n = run_backward(da, rows, cols, 20, t, &want, act, zprev, fmt, true, true);
        ASSERT_TRUE(g.res.status.ok()) << where;
        ASSERT_TRUE(n.res.status.ok()) << where;
        EXPECT_EQ(n.res.saturated, g.res.saturated) << where;
        EXPECT_TRUE(same_bits(n.g_narrow, narrowed(g.g))) << where;
        EXPECT_EQ(n.sums, g.sums) << where;
        EXPECT_TRUE(same_stats(n.stats, n.col_l1, g.stats, g.col_l1)) << where;
      }
    }
  }
}

// A device fault is reported the same way whichever output is set.
TEST_P(MathFused, NarrowOutputReportsDeviceFaults) {
  std::mt19937_64 rng(18);
  const std::size_t rows = 5, cols = 600;
  std::vector<double> zdev = device_result(rng, rows * cols);
  const std::vector<std::uint64_t> s = random_field(rng, cols);
  zdev[3 * cols + 550] = 0.5;
  const FwdOut f = run_forward(zdev, rows, cols, 16, s, nullptr, Activation::relu,
                               FixedFormat{8, 8.0}, true, true);
  EXPECT_EQ(f.res.status.fault, Fault::not_integral);
  EXPECT_EQ(f.res.status.row, 3u);
  EXPECT_EQ(f.res.status.col, 550u);
  std::vector<double> da = device_result(rng, rows * cols);
  const std::vector<double> zprev(rows * (cols - 1), 1.0);
  const std::vector<std::uint64_t> t = random_field(rng, cols);
  da[4 * cols + cols - 1] = std::numeric_limits<double>::infinity();
  const BwdOut b = run_backward(da, rows, cols, 20, t, nullptr, Activation::relu, zprev,
                                FixedFormat{12, 4.0}, true, true);
  EXPECT_EQ(b.res.status.fault, Fault::not_finite);
  EXPECT_EQ(b.res.status.row, 4u);
  EXPECT_EQ(b.res.status.col, cols - 1);
}

TEST_P(MathFused, NarrowOutputRejectsInvalidArguments) {
  const std::size_t rows = 2, cols = 3;
  const std::vector<double> zdev = {1, 2, 3, 4, 5, 6};
  const std::vector<std::uint64_t> s = {1, 2, 3};
  std::vector<double> wide(rows * cols);
  std::vector<float> narrow(rows * cols, -7.0f);
  ForwardArgs f;
  f.z = zdev.data();
  f.rows = rows;
  f.cols = cols;
  f.ld_z = cols;
  f.s = s.data();
  f.a_next_narrow = narrow.data();
  f.ld_a_next = cols;
  f.a_format = FixedFormat{8, 8.0};
  EXPECT_TRUE(fused_forward(f).status.ok());
  EXPECT_EQ(narrow[1], 512.0f);  // z = 2 at scale 0, quantized at 2^8
  f.a_next = wide.data();
  EXPECT_EQ(fused_forward(f).status.fault, Fault::invalid_argument) << "both outputs";
  f.a_next = nullptr;
  f.a_format = FixedFormat{0, 8388608.0};  // limit 2^23
  EXPECT_EQ(fused_forward(f).status.fault, Fault::invalid_argument) << "limit 2^23";
  f.a_format = FixedFormat{8, 32768.0};  // limit 2^23 again, from the fraction bits
  EXPECT_EQ(fused_forward(f).status.fault, Fault::invalid_argument) << "limit 2^23";
  f.a_next = wide.data();  // the same format is fine for a float64 output
  f.a_next_narrow = nullptr;
  EXPECT_TRUE(fused_forward(f).status.ok());
  f.a_next = nullptr;
  f.a_next_narrow = narrow.data();
  f.a_format = FixedFormat{8, 8.0};
  f.ld_a_next = cols - 1;
  EXPECT_EQ(fused_forward(f).status.fault, Fault::invalid_argument) << "ld < cols";
  f.ld_a_next = cols;
  // Next-layer dots need an output: a narrow one is enough.
  std::vector<std::uint64_t> d0(rows), d1(rows);
  std::vector<double> scratch(6 * cols);
  f.next_v[0] = s.data();
  f.next_v[1] = s.data();
  f.next_dots[0] = d0.data();
  f.next_dots[1] = d1.data();
  f.next_scratch = scratch.data();
  EXPECT_TRUE(fused_forward(f).status.ok());
  f.a_next_narrow = nullptr;
  EXPECT_EQ(fused_forward(f).status.fault, Fault::invalid_argument) << "dots without an output";

  const std::vector<double> zprev(rows * cols, 1.0);
  BackwardArgs b;
  b.da = zdev.data();
  b.rows = rows;
  b.cols = cols;
  b.ld_da = cols;
  b.t = s.data();
  b.act = Activation::relu;
  b.z_prev = zprev.data();
  b.ld_z_prev = cols;
  b.out_cols = cols;
  b.dz_prev_narrow = narrow.data();
  b.ld_dz_prev = cols;
  b.g_format = FixedFormat{12, 4.0};
  EXPECT_TRUE(fused_backward(b).status.ok());
  b.dz_prev = wide.data();
  EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << "both outputs";
  b.dz_prev = nullptr;
  b.g_format = FixedFormat{12, 2048.0};  // limit 2^23
  EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << "limit 2^23";
  b.g_format = FixedFormat{12, 4.0};
  b.z_prev = nullptr;
  EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << "no z_prev";
  b.z_prev = zprev.data();
  b.ld_dz_prev = cols - 1;
  EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << "ld < out_cols";
}

// ---- ReLU masks (relu_mask, relu_mask_prev) -------------------------------

// The mask of z (rows x cols, row stride ld_z) with row stride ld: z > 0 as a
// byte, `pos` where positive (any nonzero byte means positive), else 0; the
// padding holds kMaskFill.
std::vector<std::uint8_t> mask_of(const std::vector<double>& z, std::size_t rows,
                                  std::size_t cols, std::size_t ld_z, std::size_t ld,
                                  std::uint8_t pos = 1) {
  std::vector<std::uint8_t> m(rows * ld, kMaskFill);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) m[i * ld + j] = z[i * ld_z + j] > 0 ? pos : 0;
  return m;
}

// Zeros of both signs and the smallest values of both signs, spread over
// vector lanes and scalar tails.
template <class F>
void plant_edge_values(std::vector<double>& v, F&& value_of) {
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (k % 7 == 0) v[k] = 0.0;
    else if (k % 11 == 3) v[k] = -0.0;
    else if (k % 13 == 5) v[k] = value_of(true);
    else if (k % 17 == 1) v[k] = value_of(false);
  }
}

const std::size_t kMaskShapes[][2] = {{1, 1}, {3, 7}, {2, 512}, {2, 515}, {4, 1037}, {3, 1536}};

TEST_P(MathFused, ForwardReluMaskIsZPositive) {
  std::mt19937_64 rng(19);
  const FixedFormat fmt{8, 8.0};
  const int scale = 16;
  for (const auto& sh : kMaskShapes) {
    const std::size_t rows = sh[0], cols = sh[1];
    const std::string where = std::to_string(rows) + "x" + std::to_string(cols);
    std::vector<double> zdev = device_result(rng, rows * cols);
    plant_edge_values(zdev, [](bool pos) { return pos ? 1.0 : -1.0; });  // z = +-2^-16
    const std::vector<std::uint64_t> s = random_field(rng, cols);
    std::vector<std::uint64_t> want = ref_matvec(zdev, rows, cols, cols, s);
    want[0] = FieldQ::add(want[0], 1);  // a mismatch does not stop the pass
    // run_forward(..., with_stats, narrow, with_z, with_mask)
    auto run = [&](bool narrow, bool with_z, bool with_mask) {
      return run_forward(zdev, rows, cols, scale, s, &want, Activation::relu, fmt, true, narrow,
                         with_z, with_mask);
    };
    const FwdOut plain = run(false, true, false);
    const FwdOut with_z = run(false, true, true);
    const FwdOut no_z = run(false, false, true);
    for (const FwdOut* o : {&plain, &with_z, &no_z}) {
      EXPECT_EQ(o->res.status.fault, Fault::mismatch) << where;
      EXPECT_EQ(o->res.status.row, 0u) << where;
    }
    std::vector<std::uint8_t> want_mask(rows * (cols + kMaskPad), kMaskFill);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j)
        want_mask[i * (cols + kMaskPad) + j] = std::ldexp(zdev[i * cols + j], -scale) > 0;
    EXPECT_EQ(with_z.mask, want_mask) << where;  // padding untouched too
    EXPECT_EQ(with_z.mask, mask_of(with_z.z, rows, cols, cols, cols + kMaskPad)) << where;
    EXPECT_EQ(no_z.mask, want_mask) << where;
    EXPECT_TRUE(std::all_of(no_z.z.begin(), no_z.z.end(), [](double z) { return z == -7.0; }))
        << where << ": no z_real, none written";
    // The mask changes nothing else.
    for (const FwdOut* o : {&with_z, &no_z}) {
      EXPECT_TRUE(same_bits(o->a, plain.a)) << where;
      EXPECT_EQ(o->sums, plain.sums) << where;
      EXPECT_EQ(o->res.saturated, plain.res.saturated) << where;
      EXPECT_TRUE(same_stats(o->stats, o->col_l1, plain.stats, plain.col_l1)) << where;
      EXPECT_EQ(o->next_dots[0], plain.next_dots[0]) << where;
      EXPECT_EQ(o->next_dots[1], plain.next_dots[1]) << where;
    }
    EXPECT_TRUE(same_bits(with_z.z, plain.z)) << where;
    // With a narrow a_next.
    const FwdOut narrow = run(true, false, true);
    EXPECT_EQ(narrow.mask, want_mask) << where;
    EXPECT_TRUE(same_bits(narrow.a_narrow, narrowed(plain.a))) << where;
    EXPECT_EQ(narrow.res.saturated, plain.res.saturated) << where;
    // The mask alone: no z_real, no a_next.
    std::vector<std::uint8_t> only(rows * cols, kMaskFill);
    ForwardArgs f;
    f.z = zdev.data();
    f.rows = rows;
    f.cols = cols;
    f.ld_z = cols;
    f.scale = scale;
    f.s = s.data();
    f.act = Activation::relu;
    f.relu_mask = only.data();
    f.ld_relu_mask = cols;
    ASSERT_TRUE(fused_forward(f).status.ok()) << where;
    EXPECT_EQ(only, mask_of(with_z.z, rows, cols, cols, cols)) << where;
  }
}

TEST_P(MathFused, BackwardReluMaskMatchesZPrev) {
  std::mt19937_64 rng(20);
  const FixedFormat fmt{12, 4.0};
  for (const auto& sh : kMaskShapes) {
    const std::size_t rows = sh[0], cols = sh[1] + 1;  // + the bias column
    const std::size_t out_cols = cols - 1, ld = out_cols + kMaskPad;
    const std::string where = std::to_string(rows) + "x" + std::to_string(cols);
    const std::vector<double> da = device_result(rng, rows * cols);
    std::vector<double> zprev(rows * out_cols);
    std::uniform_real_distribution<double> d(-6, 6);
    for (auto& z : zprev) z = d(rng);
    plant_edge_values(zprev, [](bool pos) {
      const double tiny = std::numeric_limits<double>::denorm_min();
      return pos ? tiny : -tiny;
    });
    const std::vector<std::uint64_t> t = random_field(rng, cols);
    const std::vector<std::uint64_t> want = ref_matvec(da, rows, cols, cols, t);
    // Any nonzero byte means positive: 1, and bytes with the top bit set.
    for (std::uint8_t pos : {std::uint8_t{1}, std::uint8_t{0x80}, std::uint8_t{0xff}}) {
      const std::vector<std::uint8_t> mask = mask_of(zprev, rows, out_cols, out_cols, ld, pos);
      for (bool narrow : {false, true}) {
        const std::string w = where + " byte " + std::to_string(pos) + (narrow ? " narrow" : "");
        const BwdOut g = run_backward(da, rows, cols, 20, t, &want, Activation::relu, zprev, fmt,
                                      true, narrow);
        const BwdOut m = run_backward(da, rows, cols, 20, t, &want, Activation::relu, zprev, fmt,
                                      true, narrow, &mask, ld);
        ASSERT_TRUE(g.res.status.ok()) << w;
        ASSERT_TRUE(m.res.status.ok()) << w;
        if (rows * cols > 100) EXPECT_GT(g.res.saturated, 0u) << w << ": no saturation to compare";
        EXPECT_TRUE(same_bits(m.g, g.g)) << w;
        EXPECT_TRUE(same_bits(m.g_narrow, g.g_narrow)) << w;
        EXPECT_EQ(m.sums, g.sums) << w;
        EXPECT_EQ(m.res.saturated, g.res.saturated) << w;
        EXPECT_TRUE(same_stats(m.stats, m.col_l1, g.stats, g.col_l1)) << w;
      }
    }
  }
}

TEST_P(MathFused, ReluMaskRejectsInvalidArguments) {
  const std::size_t rows = 2, cols = 3;
  const std::vector<double> zdev = {1, -2, 3, 0, 5, -6};
  const std::vector<std::uint64_t> s = {1, 2, 3};
  std::vector<std::uint8_t> mask(rows * cols, kMaskFill);
  ForwardArgs f;
  f.z = zdev.data();
  f.rows = rows;
  f.cols = cols;
  f.ld_z = cols;
  f.s = s.data();
  f.act = Activation::relu;
  f.relu_mask = mask.data();
  f.ld_relu_mask = cols;
  EXPECT_TRUE(fused_forward(f).status.ok());
  EXPECT_EQ(mask, (std::vector<std::uint8_t>{1, 0, 1, 0, 1, 0}));
  f.ld_relu_mask = cols - 1;
  EXPECT_EQ(fused_forward(f).status.fault, Fault::invalid_argument) << "ld < cols";
  f.ld_relu_mask = cols;
  for (Activation act : kAll) {
    if (act == Activation::relu) continue;
    f.act = act;
    EXPECT_EQ(fused_forward(f).status.fault, Fault::invalid_argument) << activation_name(act);
  }
  f.act = Activation::relu;
  f.rows = 1;
  f.ld_relu_mask = 0;  // one row needs no stride, as for the other matrices
  EXPECT_TRUE(fused_forward(f).status.ok());

  const std::vector<double> zprev(rows * cols, 1.0);
  std::vector<double> g(rows * cols);
  BackwardArgs b;
  b.da = zdev.data();
  b.rows = rows;
  b.cols = cols;
  b.ld_da = cols;
  b.t = s.data();
  b.act = Activation::relu;
  b.relu_mask_prev = mask.data();
  b.ld_relu_mask_prev = cols;
  b.out_cols = cols;
  b.dz_prev = g.data();
  b.ld_dz_prev = cols;
  b.g_format = FixedFormat{12, 4.0};
  EXPECT_TRUE(fused_backward(b).status.ok());
  b.z_prev = zprev.data();
  b.ld_z_prev = cols;
  EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << "both z_prev and mask";
  b.relu_mask_prev = nullptr;
  EXPECT_TRUE(fused_backward(b).status.ok()) << "z_prev alone";
  b.z_prev = nullptr;
  EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << "neither";
  b.dz_prev = nullptr;
  std::vector<float> gn(rows * cols);
  b.dz_prev_narrow = gn.data();
  EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << "neither, narrow";
  b.relu_mask_prev = mask.data();
  EXPECT_TRUE(fused_backward(b).status.ok()) << "mask, narrow";
  b.ld_relu_mask_prev = cols - 1;
  EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << "ld < out_cols";
  b.ld_relu_mask_prev = cols;
  for (Activation act : kAll) {
    if (act == Activation::relu) continue;
    b.act = act;
    EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument) << activation_name(act);
    b.z_prev = zprev.data();
    EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument)
        << activation_name(act) << " with z_prev too";
    b.dz_prev_narrow = nullptr;
    EXPECT_EQ(fused_backward(b).status.fault, Fault::invalid_argument)
        << activation_name(act) << " without an output";
    b.relu_mask_prev = nullptr;
    EXPECT_TRUE(fused_backward(b).status.ok()) << activation_name(act) << " without the mask";
    b.relu_mask_prev = mask.data();
    b.z_prev = nullptr;
    b.dz_prev_narrow = gn.data();
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, MathFused, ::testing::ValuesIn(all_paths()), path_param_name);

TEST(MathFusedPaths, VectorAndPortablePathsAreBitIdentical) {
  PathGuard guard;
  const std::vector<KernelPath> paths = supported_paths();
  std::mt19937_64 rng(14);
  const std::size_t rows = 9, cols = 1037;  // crosses chunk boundaries, ragged tail
  const std::vector<double> zdev = device_result(rng, rows * cols);
  const std::vector<double> da = device_result(rng, rows * (cols + 1));
  std::vector<double> zprev(rows * cols);
  std::uniform_real_distribution<double> d(-6, 6);
  for (auto& z : zprev) z = d(rng);
  for (std::size_t k = 0; k < zprev.size(); k += 11) zprev[k] = 0.0;
  const std::vector<std::uint64_t> s = random_field(rng, cols), t = random_field(rng, cols + 1);
  const std::vector<std::uint64_t> y = random_field(rng, rows);
  const std::vector<std::uint8_t> mask_prev = mask_of(zprev, rows, cols, cols, cols);
  for (Activation act : kAll) {
    const bool relu = act == Activation::relu;
    // The last format's limit, 2^4 * 1e6 > 2^23, takes the integer path for next_dots.
    for (FixedFormat fmt : {FixedFormat{8, 8.0}, FixedFormat{12, 0.5}, FixedFormat{0, 1e6},
                            FixedFormat{4, 1e6}}) {
      ASSERT_TRUE(force_kernel_path(KernelPath::portable));
      const FwdOut f0 = run_forward(zdev, rows, cols, 16, s, nullptr, act, fmt);
      const BwdOut b0 = run_backward(da, rows, cols + 1, 20, t, nullptr, act, zprev, fmt);
      const FwdOut fm0 = relu ? run_forward(zdev, rows, cols, 16, s, nullptr, act, fmt, true,
                                            false, false, true)
                              : FwdOut{};
      std::vector<std::uint64_t> mv0(rows), mt0(cols);
      ASSERT_TRUE(matvec_mod(zdev.data(), rows, cols, cols, s.data(), mv0.data()).ok());
      ASSERT_TRUE(matvec_t_mod(zdev.data(), rows, cols, cols, y.data(), mt0.data()).ok());
      ASSERT_TRUE(f0.res.status.ok());
      ASSERT_TRUE(b0.res.status.ok());
      for (KernelPath p : paths) {
        ASSERT_TRUE(force_kernel_path(p));
        const FwdOut f = run_forward(zdev, rows, cols, 16, s, nullptr, act, fmt);
        const BwdOut b = run_backward(da, rows, cols + 1, 20, t, nullptr, act, zprev, fmt);
        const char* name = kernel_path_name(p);
        EXPECT_TRUE(same_bits(f.z, f0.z)) << name << " " << activation_name(act);
        EXPECT_TRUE(same_bits(f.a, f0.a)) << name << " " << activation_name(act);
        EXPECT_EQ(f.sums, f0.sums) << name;
        EXPECT_EQ(f.res.saturated, f0.res.saturated) << name << " " << activation_name(act);
        EXPECT_TRUE(same_bits(b.g, b0.g)) << name << " " << activation_name(act);
        EXPECT_EQ(b.sums, b0.sums) << name;
        EXPECT_EQ(b.res.saturated, b0.res.saturated) << name;
        expect_stats(f.stats, f.col_l1, f.a, rows, cols, cols + 1, name);
        for (int r = 0; r < 2; ++r) {
          EXPECT_EQ(f.next_dots[r], ref_matvec(f.a, rows, cols, cols + 1, f.next_v[r])) << name;
          EXPECT_EQ(f.next_dots[r], f0.next_dots[r]) << name;
        }
        expect_stats(b.stats, b.col_l1, b.g, rows, cols, cols, name);
        // Gathering the magnitudes changes nothing else.
        const FwdOut fn = run_forward(zdev, rows, cols, 16, s, nullptr, act, fmt, false);
        const BwdOut bn = run_backward(da, rows, cols + 1, 20, t, nullptr, act, zprev, fmt, false);
        EXPECT_TRUE(same_bits(fn.a, f.a) && same_bits(fn.z, f.z) && fn.sums == f.sums) << name;
        EXPECT_TRUE(same_bits(bn.g, b.g) && bn.sums == b.sums) << name;
        EXPECT_EQ(fn.res.saturated, f.res.saturated) << name;
        EXPECT_EQ(bn.res.saturated, b.res.saturated) << name;
        if (relu) {
          // ReLU masks: the same bytes on every path, and the gradients of z.
          const FwdOut fm =
              run_forward(zdev, rows, cols, 16, s, nullptr, act, fmt, true, false, false, true);
          EXPECT_EQ(fm.mask, fm0.mask) << name;
          EXPECT_EQ(fm.mask, mask_of(f0.z, rows, cols, cols, cols + kMaskPad)) << name;
          EXPECT_TRUE(same_bits(fm.a, f0.a) && fm.sums == f0.sums) << name;
          EXPECT_EQ(fm.res.saturated, f0.res.saturated) << name;
          const BwdOut bm = run_backward(da, rows, cols + 1, 20, t, nullptr, act, zprev, fmt,
                                         true, false, &mask_prev, cols);
          EXPECT_TRUE(same_bits(bm.g, b0.g) && bm.sums == b0.sums) << name;
          EXPECT_EQ(bm.res.saturated, b0.res.saturated) << name;
          EXPECT_TRUE(same_stats(bm.stats, bm.col_l1, b.stats, b.col_l1)) << name;
        }
        std::vector<std::uint64_t> mv(rows), mt(cols);
        ASSERT_TRUE(matvec_mod(zdev.data(), rows, cols, cols, s.data(), mv.data()).ok());
        ASSERT_TRUE(matvec_t_mod(zdev.data(), rows, cols, cols, y.data(), mt.data()).ok());
        EXPECT_EQ(mv, mv0) << name;
        EXPECT_EQ(mt, mt0) << name;
        if (fixed_limit(fmt) < 8388608.0) {
          // Narrow outputs on this path: the portable float64 outputs, narrowed.
          const FwdOut fw = run_forward(zdev, rows, cols, 16, s, nullptr, act, fmt, true, true);
          const BwdOut bw = run_backward(da, rows, cols + 1, 20, t, nullptr, act, zprev, fmt,
                                         true, true);
          EXPECT_TRUE(same_bits(fw.a_narrow, narrowed(f0.a))) << name << " narrow";
          EXPECT_EQ(fw.next_dots[0], f0.next_dots[0]) << name << " narrow";
          EXPECT_EQ(fw.next_dots[1], f0.next_dots[1]) << name << " narrow";
          EXPECT_EQ(fw.res.saturated, f0.res.saturated) << name << " narrow";
          EXPECT_TRUE(same_bits(bw.g_narrow, narrowed(b0.g))) << name << " narrow";
          EXPECT_EQ(bw.res.saturated, b0.res.saturated) << name << " narrow";
          if (relu) {
            const BwdOut bwm = run_backward(da, rows, cols + 1, 20, t, nullptr, act, zprev, fmt,
                                            true, true, &mask_prev, cols);
            EXPECT_TRUE(same_bits(bwm.g_narrow, narrowed(b0.g))) << name << " narrow, mask";
            EXPECT_EQ(bwm.res.saturated, b0.res.saturated) << name << " narrow, mask";
          }
          // The quantized output (bias column -7 included) as a narrow operand.
          const std::vector<double>& small_a = f0.a;
          const std::vector<float> an = narrowed(small_a);
          std::vector<std::uint64_t> mvn(rows), mtn(cols + 1), mv_d(rows), mt_d(cols + 1);
          ASSERT_TRUE(matvec_mod(an.data(), rows, cols, cols + 1, s.data(), mvn.data()).ok());
          ASSERT_TRUE(matvec_t_mod(an.data(), rows, cols + 1, cols + 1, y.data(), mtn.data()).ok());
          ASSERT_TRUE(force_kernel_path(KernelPath::portable));
          ASSERT_TRUE(matvec_mod(small_a.data(), rows, cols, cols + 1, s.data(), mv_d.data()).ok());
          ASSERT_TRUE(
              matvec_t_mod(small_a.data(), rows, cols + 1, cols + 1, y.data(), mt_d.data()).ok());
          ASSERT_TRUE(force_kernel_path(p));
          EXPECT_EQ(mvn, mv_d) << name << " narrow matvec";
          EXPECT_EQ(mtn, mt_d) << name << " narrow matvec_t";
        }
      }
    }
  }
}

TEST(MathFusedPaths, AutomaticPicksTheWidestSupportedPath) {
  PathGuard guard;
  ASSERT_TRUE(force_kernel_path(KernelPath::portable));
  release_kernel_path();
  const KernelPath p = best_kernel_path();
  EXPECT_EQ(active_kernel_path(), p);
  EXPECT_TRUE(kernel_path_supported(p));
  if (kernel_path_supported(KernelPath::avx512)) EXPECT_EQ(p, KernelPath::avx512);
  else if (kernel_path_supported(KernelPath::avx2)) EXPECT_EQ(p, KernelPath::avx2);
  std::printf("[ info ] automatic kernel path here: %s\n", kernel_path_name(p));
}

// One verified SGD step (docs/design.md §4.2) on the hand-computed two-layer
// network of test_loss.cpp, in fixed point: f_a = 8, f_g = 12, weights at
// S = f_a + f_g (learning rate 1), so every value is exact.
TEST(MathFusedPaths, VerifiedTrainingStepReproducesHandGradients) {
  const int fa = 8, fg = 12, S = fa + fg;
  const FixedFormat afmt{fa, 64.0}, gfmt{fg, 64.0};
  const std::size_t B = 2;
  std::mt19937_64 rng(15);
  // Layer 1: 2 -> 2 ReLU, layer 2: 2 -> 1 identity; M = [W; b] at 2^S.
  const std::vector<double> w1 = {1, -1, 0.5, 1, 0, -0.5}, w2 = {1, -2, 0.5};
  std::vector<double> m1(6), m2(3);
  for (int k = 0; k < 6; ++k) m1[k] = std::ldexp(w1[k], S);
  for (int k = 0; k < 3; ++k) m2[k] = std::ldexp(w2[k], S);
  const std::vector<std::uint64_t> s1 = random_field(rng, 2), t1 = random_field(rng, 3);
  const std::vector<std::uint64_t> s2 = random_field(rng, 1), t2 = random_field(rng, 3);
  std::vector<std::uint64_t> v1(3), w1f(2), v2(3), w2f(1);
  ASSERT_TRUE(matvec_mod(m1.data(), 3, 2, 2, s1.data(), v1.data()).ok());
  ASSERT_TRUE(matvec_t_mod(m1.data(), 3, 2, 2, t1.data(), w1f.data()).ok());
  ASSERT_TRUE(matvec_mod(m2.data(), 3, 1, 1, s2.data(), v2.data()).ok());
  ASSERT_TRUE(matvec_t_mod(m2.data(), 3, 1, 1, t2.data(), w2f.data()).ok());

  // Input with its bias column 2^fa.
  const std::vector<double> x = {1, 2, 0, 1};
  std::vector<double> a0(B * 3);
  ASSERT_TRUE(quantize(x.data(), B, 2, 2, afmt, a0.data(), 3).status.ok());
  a0[2] = a0[5] = std::ldexp(1.0, fa);

  // Forward layer 1 (device product, then the fused check + ReLU + quantize).
  std::vector<double> z1dev = matmul(a0, m1, B, 3, 2);
  std::vector<std::uint64_t> exp1(B);
  ASSERT_TRUE(matvec_mod(a0.data(), B, 3, 3, v1.data(), exp1.data()).ok());
  std::vector<double> z1(B * 2), a1(B * 3);
  ForwardArgs f1;
  f1.z = z1dev.data(); f1.rows = B; f1.cols = 2; f1.ld_z = 2; f1.scale = fa + S;
  f1.s = s1.data(); f1.expected = exp1.data(); f1.act = Activation::relu;
  f1.z_real = z1.data(); f1.ld_z_real = 2; f1.a_next = a1.data(); f1.ld_a_next = 3; f1.a_format = afmt;
  ASSERT_TRUE(fused_forward(f1).status.ok());
  EXPECT_EQ(z1, (std::vector<double>{2, 0.5, 0.5, 0.5}));
  a1[2] = a1[5] = std::ldexp(1.0, fa);
  // A lying device is caught.
  z1dev[3] += 1;
  EXPECT_EQ(fused_forward(f1).status.fault, Fault::mismatch);
  z1dev[3] -= 1;

  // Forward layer 2 -> logits, MSE against y = 1.
  const std::vector<double> z2dev = matmul(a1, m2, B, 3, 1);
  std::vector<std::uint64_t> exp2(B);
  ASSERT_TRUE(matvec_mod(a1.data(), B, 3, 3, v2.data(), exp2.data()).ok());
  std::vector<double> z2(B);
  ForwardArgs f2;
  f2.z = z2dev.data(); f2.rows = B; f2.cols = 1; f2.ld_z = 1; f2.scale = fa + S;
  f2.s = s2.data(); f2.expected = exp2.data(); f2.z_real = z2.data(); f2.ld_z_real = 1;
  ASSERT_TRUE(fused_forward(f2).status.ok());
  EXPECT_EQ(z2, (std::vector<double>{1.5, 0}));
  std::vector<double> dc(B);
  const std::int32_t labels[] = {0, 0};
  ASSERT_TRUE(mse_onehot(z2.data(), B, 1, 1, labels, dc.data(), 1).status.ok());
  std::vector<double> dz2(B);  // identity: dz = dC/da
  ASSERT_TRUE(quantize(dc.data(), B, 1, 1, gfmt, dz2.data(), 1).status.ok());

  // Backward through layer 2: device returns dA1 = dZ2 M2^T; fused pass
  // checks it against dZ2 w2 and emits dZ1 = relu'(z1) * dA1 (bias column dropped).
  std::vector<double> m2t(3);
  for (int k = 0; k < 3; ++k) m2t[k] = m2[k];
  const std::vector<double> da1 = matmul(dz2, m2t, B, 1, 3);
  std::vector<std::uint64_t> expb(B);
  ASSERT_TRUE(matvec_mod(dz2.data(), B, 1, 1, w2f.data(), expb.data()).ok());
  std::vector<double> dz1(B * 2);
  BackwardArgs bk;
  bk.da = da1.data(); bk.rows = B; bk.cols = 3; bk.ld_da = 3; bk.scale = fg + S;
  bk.t = t2.data(); bk.expected = expb.data(); bk.act = Activation::relu;
  bk.z_prev = z1.data(); bk.ld_z_prev = 2; bk.out_cols = 2;
  bk.dz_prev = dz1.data(); bk.ld_dz_prev = 2; bk.g_format = gfmt;
  ASSERT_TRUE(fused_backward(bk).status.ok());
  EXPECT_EQ(dz1, (std::vector<double>{4096, -8192, -8192, 16384}));

  // Updates M <- M - A^T dZ (exact at 2^S) and the fingerprints
  // v <- v - A^T (dZ s), w <- w - dZ^T (A t); then the export check.
  auto update = [&](std::vector<double>& m, const std::vector<double>& a, const std::vector<double>& dz,
                    std::size_t n1, std::size_t mm, const std::vector<std::uint64_t>& s,
                    const std::vector<std::uint64_t>& t, std::vector<std::uint64_t>& v,
                    std::vector<std::uint64_t>& w) {
    for (std::size_t k = 0; k < n1; ++k)
      for (std::size_t j = 0; j < mm; ++j) {
        double g = 0;
        for (std::size_t i = 0; i < B; ++i) g += a[i * n1 + k] * dz[i * mm + j];
        m[k * mm + j] -= g;
      }
    std::vector<std::uint64_t> dzs(B), at(B), dv(n1), dw(mm);
    ASSERT_TRUE(matvec_mod(dz.data(), B, mm, mm, s.data(), dzs.data()).ok());
    ASSERT_TRUE(matvec_t_mod(a.data(), B, n1, n1, dzs.data(), dv.data()).ok());
    ASSERT_TRUE(matvec_mod(a.data(), B, n1, n1, t.data(), at.data()).ok());
    ASSERT_TRUE(matvec_t_mod(dz.data(), B, mm, mm, at.data(), dw.data()).ok());
    for (std::size_t k = 0; k < n1; ++k) v[k] = FieldQ::sub(v[k], dv[k]);
    for (std::size_t j = 0; j < mm; ++j) w[j] = FieldQ::sub(w[j], dw[j]);
  };
  const std::vector<double> m1_old = m1, m2_old = m2;
  update(m2, a1, dz2, 3, 1, s2, t2, v2, w2f);
  update(m1, a0, dz1, 3, 2, s1, t1, v1, w1f);
  EXPECT_TRUE(fingerprint_check(m1.data(), 3, 2, 2, s1.data(), v1.data(), t1.data(), w1f.data()).ok());
  EXPECT_TRUE(fingerprint_check(m2.data(), 3, 1, 1, s2.data(), v2.data(), t2.data(), w2f.data()).ok());
  // The applied step is the hand-computed gradient: [dW; db] at scale 2^S.
  const std::vector<double> g1 = {1, -2, 0, 0, -1, 2}, g2 = {1, -0.5, -1};
  for (int k = 0; k < 6; ++k) EXPECT_EQ(std::ldexp(m1_old[k] - m1[k], -S), g1[k]) << k;
  for (int k = 0; k < 3; ++k) EXPECT_EQ(std::ldexp(m2_old[k] - m2[k], -S), g2[k]) << k;
  // A device that skipped the update fails the export check.
  EXPECT_EQ(fingerprint_check(m1_old.data(), 3, 2, 2, s1.data(), v1.data(), t1.data(), w1f.data()).fault,
            Fault::mismatch);
}

}  // namespace
}  // namespace math
}  // namespace veil
