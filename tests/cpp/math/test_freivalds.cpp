// Freivalds checks, range checks and the mod-q matrix-vector products, run
// once per kernel path (portable, AVX2, AVX-512 where the CPU has it).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "math/field.h"
#include "math/freivalds.h"
#include "math/fused.h"
#include "math_test_util.h"

namespace veil {
namespace math {
namespace {

using namespace testing_util;

class MathFreivalds : public MathPathTest {};

struct Product {
  std::size_t rows, inner, cols;
  std::vector<double> a, b, c;
  std::vector<std::uint64_t> s, bs;
};

// An exact product of random integers, with B s precomputed mod q.
Product make_product(std::mt19937_64& rng, std::size_t rows, std::size_t inner, std::size_t cols,
                     std::int64_t bound = 1000) {
  Product p{rows, inner, cols, random_ints(rng, rows * inner, bound),
            random_ints(rng, inner * cols, bound), {}, random_field(rng, cols), {}};
  p.c = matmul(p.a, p.b, rows, inner, cols);
  p.bs.resize(inner);
  EXPECT_TRUE(matvec_mod(p.b.data(), inner, cols, cols, p.s.data(), p.bs.data()).ok());
  return p;
}

// The enclave's check of a product: C s == A (B s) row by row, C range-checked,
// by the fused pass with no outputs (as the limb path and private inference do).
Status check(const Product& p, const std::vector<double>& c) {
  std::vector<std::uint64_t> expected(p.rows);
  Status st = matvec_mod(p.a.data(), p.rows, p.inner, p.inner, p.bs.data(), expected.data());
  ForwardArgs f;
  f.z = c.data();
  f.rows = p.rows;
  f.cols = f.ld_z = p.cols;
  f.s = p.s.data();
  f.expected = expected.data();
  return st.ok() ? fused_forward(f).status : st;
}

const std::size_t kShapes[][3] = {{1, 1, 1},   {1, 7, 1},   {3, 5, 4},   {2, 3, 9},
                                  {500, 3, 2}, {700, 9, 1}, {2, 700, 3}, {2, 5, 1500},
                                  {17, 33, 65}, {64, 128, 10}};

TEST_P(MathFreivalds, AcceptsEveryCorrectProduct) {
  std::mt19937_64 rng(1);
  for (const auto& sh : kShapes) {
    const Product p = make_product(rng, sh[0], sh[1], sh[2]);
    EXPECT_TRUE(check(p, p.c).ok()) << sh[0] << "x" << sh[1] << "x" << sh[2];
  }
}

TEST_P(MathFreivalds, RejectsEachCorruption) {
  std::mt19937_64 rng(2);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto& sh : kShapes) {
    const Product p = make_product(rng, sh[0], sh[1], sh[2]);
    const std::size_t i = p.rows / 2, j = p.cols - 1, e = i * p.cols + j;
    const std::string where = std::to_string(p.rows) + "x" + std::to_string(p.cols);
    auto expect_fault = [&](std::vector<double> c, Fault f, std::size_t row, std::size_t col,
                            const char* what) {
      const Status st = check(p, c);
      EXPECT_EQ(st.fault, f) << what << " " << where;
      EXPECT_EQ(st.row, row) << what << " " << where;
      EXPECT_EQ(st.col, col) << what << " " << where;
    };
    std::vector<double> c = p.c;
    c[e] += 1;
    expect_fault(c, Fault::mismatch, i, Status::npos, "one wrong element");
    c = p.c;
    for (std::size_t k = 0; k < p.cols; ++k) c[i * p.cols + k] += 1 + static_cast<double>(rng() % 1000);
    expect_fault(c, Fault::mismatch, i, Status::npos, "wrong row");
    if (p.cols >= 2) {
      c = p.c;
      // Swap two columns of the whole result; the first row where they differ fails.
      std::size_t first = Status::npos;
      for (std::size_t r = 0; r < p.rows; ++r) {
        std::swap(c[r * p.cols], c[r * p.cols + 1]);
        if (first == Status::npos && c[r * p.cols] != c[r * p.cols + 1]) first = r;
      }
      if (first != Status::npos) expect_fault(c, Fault::mismatch, first, Status::npos, "swapped columns");
    }
    c = p.c;
    c[e] += static_cast<double>(FieldQ::modulus);  // invisible mod q, caught by the range check
    expect_fault(c, Fault::out_of_range, i, j, "off by q");
    c = p.c;
    c[e] += 0.5;
    expect_fault(c, Fault::not_integral, i, j, "non-integral");
    c = p.c;
    c[e] = 9007199254740992.0;  // 2^53
    expect_fault(c, Fault::out_of_range, i, j, "2^53");
    c[e] = -9007199254740992.0;
    expect_fault(c, Fault::out_of_range, i, j, "-2^53");
    c[e] = nan;
    expect_fault(c, Fault::not_finite, i, j, "NaN");
    c[e] = inf;
    expect_fault(c, Fault::not_finite, i, j, "+Inf");
    c[e] = -inf;
    expect_fault(c, Fault::not_finite, i, j, "-Inf");
    c[e] = 1e-300;  // tiny, non-zero: not an integer
    expect_fault(c, Fault::not_integral, i, j, "tiny");
    c[e] = 5e-324;  // subnormal
    expect_fault(c, Fault::not_integral, i, j, "subnormal");
  }
}

TEST_P(MathFreivalds, RangeFaultWinsOverEarlierMismatch) {
  std::mt19937_64 rng(3);
  const Product p = make_product(rng, 6, 4, 5);
  std::vector<double> c = p.c;
  c[0] += 1;                                            // mismatch in row 0
  c[4 * 5 + 2] = std::numeric_limits<double>::quiet_NaN();  // range fault in row 4
  const Status st = check(p, c);
  EXPECT_EQ(st.fault, Fault::not_finite);
  EXPECT_EQ(st.row, 4u);
  EXPECT_EQ(st.col, 2u);
}

TEST_P(MathFreivalds, MatvecAgreesWithReferenceOnWideValues) {
  std::mt19937_64 rng(4);
  const std::int64_t big = (std::int64_t{1} << 53) - 1;
  for (const auto& sh : kShapes) {
    const std::size_t rows = sh[0], cols = sh[2] + sh[1], ld = cols + 3;
    std::vector<double> x = random_ints(rng, rows * ld, big);
    // Edge values: 0, +-1, +-(2^53 - 1), -0.0, powers of two around 2^32.
    const double edges[] = {0.0, -0.0, 1.0, -1.0, static_cast<double>(big), -static_cast<double>(big),
                            4294967296.0, -4294967295.0, 4294967297.0, 2147483648.0};
    for (std::size_t k = 0; k < sizeof(edges) / sizeof(edges[0]) && k < x.size(); ++k) {
      x[(k * 7) % x.size()] = edges[k];
    }
    std::vector<std::uint64_t> v = random_field(rng, cols), y = random_field(rng, rows);
    v[0] = FieldQ::modulus - 1;
    y[0] = 0;
    std::vector<std::uint64_t> out(rows), out_t(cols);
    ASSERT_TRUE(matvec_mod(x.data(), rows, cols, ld, v.data(), out.data()).ok());
    EXPECT_EQ(out, ref_matvec(x, rows, cols, ld, v));
    ASSERT_TRUE(matvec_t_mod(x.data(), rows, cols, ld, y.data(), out_t.data()).ok());
    EXPECT_EQ(out_t, ref_matvec_t(x, rows, cols, ld, y));
  }
}

TEST_P(MathFreivalds, MatvecReportsFirstRangeFault) {
  std::vector<double> x(4 * 9, 1.0);
  std::vector<std::uint64_t> v(9, 1), y(4, 1), out(9);
  x[2 * 9 + 6] = 0.25;
  x[3 * 9 + 1] = std::numeric_limits<double>::infinity();
  Status st = matvec_mod(x.data(), 4, 9, 9, v.data(), out.data());
  EXPECT_EQ(st.fault, Fault::not_integral);
  EXPECT_EQ(st.row, 2u);
  EXPECT_EQ(st.col, 6u);
  st = matvec_t_mod(x.data(), 4, 9, 9, y.data(), out.data());
  EXPECT_EQ(st.fault, Fault::not_integral);
  EXPECT_EQ(st.row, 2u);
  EXPECT_EQ(st.col, 6u);
}

// Small operands (integers below 2^23, what the enclave quantizes) take a
// float64 path in the vector kernels; larger ones the integer path. Both must
// give the reference field values, chunk by chunk, whatever the mix.
TEST_P(MathFreivalds, SmallOperandPathMatchesReference) {
  std::mt19937_64 rng(6);
  const std::int64_t small = (std::int64_t{1} << 23) - 1;
  const std::size_t shapes[][2] = {{1, 1},   {3, 5},    {4, 1},    {5, 3},    {8, 7},
                                   {9, 511}, {6, 512},  {7, 513},  {4, 1025}, {33, 1030},
                                   {256, 65}, {3, 2000}};
  for (const auto& sh : shapes) {
    const std::size_t rows = sh[0], cols = sh[1], ld = cols + 1;
    const std::string where = std::to_string(rows) + "x" + std::to_string(cols);
    std::vector<double> x = random_ints(rng, rows * ld, small);
    // The largest small magnitudes, zeros, and one value just past the limit.
    const double edges[] = {static_cast<double>(small), -static_cast<double>(small), 0.0, -0.0,
                            8388608.0};
    for (std::size_t k = 0; k < 5 && k < x.size(); ++k) x[(k * 13 + 1) % x.size()] = edges[k];
    std::vector<std::uint64_t> v = random_field(rng, cols), w = random_field(rng, cols),
                               y = random_field(rng, rows);
    // Limb boundaries: all ones (q - 1) and values at 2^21 and 2^42 splits.
    const std::uint64_t limbs[] = {FieldQ::modulus - 1, (1ull << 21) - 1, 1ull << 21,
                                   (1ull << 42) - 1, 1ull << 42};
    for (std::size_t k = 0; k < 5; ++k) {
      v[(k * 3) % cols] = limbs[k];
      y[(k * 5) % rows] = limbs[k];
    }
    for (int variant = 0; variant < 3; ++variant) {
      if (variant == 1) x[(rows / 2) * ld + cols / 2] = 9007199254740991.0;  // one large value
      if (variant == 2)
        for (std::size_t i = 0; i < x.size(); i += 2) x[i] = small;  // worst case for exactness
      std::vector<std::uint64_t> o1(rows), o2(rows), ot(cols);
      ASSERT_TRUE(matvec_mod(x.data(), rows, cols, ld, v.data(), o1.data()).ok()) << where;
      EXPECT_EQ(o1, ref_matvec(x, rows, cols, ld, v)) << where << " variant " << variant;
      ASSERT_TRUE(matvec2_mod(x.data(), rows, cols, ld, v.data(), w.data(), o1.data(), o2.data())
                      .ok());
      EXPECT_EQ(o1, ref_matvec(x, rows, cols, ld, v)) << "matvec2 " << where << " " << variant;
      EXPECT_EQ(o2, ref_matvec(x, rows, cols, ld, w)) << "matvec2 " << where << " " << variant;
      ASSERT_TRUE(matvec_t_mod(x.data(), rows, cols, ld, y.data(), ot.data()).ok()) << where;
      EXPECT_EQ(ot, ref_matvec_t(x, rows, cols, ld, y)) << where << " variant " << variant;
    }
  }
}

// x^T y over more rows than one float64 block folds between blocks; the
// largest small values times all-ones limbs are the exactness worst case.
TEST_P(MathFreivalds, SmallOperandTransposeAcrossRowBlocks) {
  std::mt19937_64 rng(7);
  const double small = 8388607.0;
  const std::size_t rows = 1300, cols = 37;
  std::vector<double> x(rows * cols, small);
  for (std::size_t i = 0; i < x.size(); i += 3) x[i] = -small;
  std::vector<std::uint64_t> y(rows, FieldQ::modulus - 1), out(cols);
  ASSERT_TRUE(matvec_t_mod(x.data(), rows, cols, cols, y.data(), out.data()).ok());
  EXPECT_EQ(out, ref_matvec_t(x, rows, cols, cols, y));
  x[900 * cols + 4] = 8388608.0;  // the second block alone takes the integer path
  y = random_field(rng, rows);
  ASSERT_TRUE(matvec_t_mod(x.data(), rows, cols, cols, y.data(), out.data()).ok());
  EXPECT_EQ(out, ref_matvec_t(x, rows, cols, cols, y));
}

// The kernels walk wide matrices chunk by chunk, but a fault is still the
// first bad element in row-major order.
TEST_P(MathFreivalds, MatvecFaultOrderAcrossChunks) {
  const std::size_t rows = 6, cols = 1030;
  std::vector<double> x(rows * cols, 3.0);
  x[1 * cols + 1000] = std::numeric_limits<double>::quiet_NaN();  // row 1, a late chunk
  x[3 * cols + 5] = 0.5;                                          // row 3, the first chunk
  x[0 * cols + 7] = 1e15;  // a large but valid value before both
  std::vector<std::uint64_t> v(cols, 5), w(cols, 7), y(rows, 11), o1(rows), o2(rows), ot(cols);
  for (int which = 0; which < 3; ++which) {
    Status st = which == 0   ? matvec_mod(x.data(), rows, cols, cols, v.data(), o1.data())
                : which == 1 ? matvec2_mod(x.data(), rows, cols, cols, v.data(), w.data(),
                                           o1.data(), o2.data())
                             : matvec_t_mod(x.data(), rows, cols, cols, y.data(), ot.data());
    EXPECT_EQ(st.fault, Fault::not_finite) << which;
    EXPECT_EQ(st.row, 1u) << which;
    EXPECT_EQ(st.col, 1000u) << which;
  }
}

TEST_P(MathFreivalds, FingerprintExportCheck) {
  std::mt19937_64 rng(5);
  const std::size_t rows = 37, cols = 300;  // more columns than one internal block
  std::vector<double> m = random_ints(rng, rows * cols, std::int64_t{1} << 40);
  const std::vector<std::uint64_t> s = random_field(rng, cols), t = random_field(rng, rows);
  std::vector<std::uint64_t> v(rows), w(cols);
  ASSERT_TRUE(matvec_mod(m.data(), rows, cols, cols, s.data(), v.data()).ok());
  ASSERT_TRUE(matvec_t_mod(m.data(), rows, cols, cols, t.data(), w.data()).ok());
  EXPECT_TRUE(fingerprint_check(m.data(), rows, cols, cols, s.data(), v.data(), t.data(), w.data()).ok());
  m[5 * cols + 280] -= 1;
  Status st = fingerprint_check(m.data(), rows, cols, cols, s.data(), v.data(), t.data(), w.data());
  EXPECT_EQ(st.fault, Fault::mismatch);
  EXPECT_EQ(st.row, 5u);
  m[5 * cols + 280] += 1;
  w[281] = FieldQ::add(w[281], 1);
  st = fingerprint_check(m.data(), rows, cols, cols, s.data(), v.data(), t.data(), w.data());
  EXPECT_EQ(st.fault, Fault::mismatch);
  EXPECT_EQ(st.row, Status::npos);
  EXPECT_EQ(st.col, 281u);
}

TEST_P(MathFreivalds, RejectsBadArguments) {
  std::vector<double> x(4, 1.0);
  std::vector<std::uint64_t> v(2, 1), out(2);
  EXPECT_EQ(matvec_mod(static_cast<const double*>(nullptr), 2, 2, 2, v.data(), out.data()).fault,
            Fault::invalid_argument);
  EXPECT_EQ(matvec_mod(x.data(), 2, 2, 1, v.data(), out.data()).fault, Fault::invalid_argument);
  EXPECT_TRUE(matvec_mod(x.data(), 0, 2, 2, v.data(), out.data()).ok());
}

// ---- Narrow operands (float32 integers below 2^23) ------------------------

constexpr float kNarrowMax = 8388607.0f;  // 2^23 - 1, the largest narrow magnitude

std::vector<float> random_narrow(std::mt19937_64& rng, std::size_t n, std::int64_t bound) {
  std::vector<float> v(n);
  std::uniform_int_distribution<std::int64_t> d(-bound, bound);
  for (auto& e : v) e = static_cast<float>(d(rng));
  return v;
}

std::vector<double> widen(const std::vector<float>& x) {
  return std::vector<double>(x.begin(), x.end());
}

// Every narrow overload against its float64 twin on the same values (and the
// reference): the shapes cross kChunk = 512 columns and kSmallRows = 512 rows,
// have ragged tails and padding (ld > cols), and include rows < 4, which the
// float64 kernels send to their integer path.
TEST_P(MathFreivalds, NarrowOperandMatchesDouble) {
  std::mt19937_64 rng(21);
  const std::size_t shapes[][2] = {{1, 1},   {1, 9},    {2, 5},     {3, 513},   {4, 1},
                                   {5, 3},   {8, 7},    {9, 511},   {6, 512},   {7, 513},
                                   {4, 1025}, {33, 1030}, {600, 37}, {1100, 21}, {513, 515}};
  for (const auto& sh : shapes) {
    const std::size_t rows = sh[0], cols = sh[1], ld = cols + 3;
    const std::string where = std::to_string(rows) + "x" + std::to_string(cols);
    for (int variant = 0; variant < 3; ++variant) {
      // 0: moderate values like quantized activations; 1: the full narrow range
      // with its edges; 2: only +-(2^23 - 1), the exactness worst case.
      std::vector<float> x = random_narrow(rng, rows * ld, variant == 0 ? 1 << 15 : (1 << 23) - 1);
      if (variant == 1) {
        const float edges[] = {kNarrowMax, -kNarrowMax, 0.0f, -0.0f, 1.0f, -1.0f};
        for (std::size_t k = 0; k < 6 && k < x.size(); ++k) x[(k * 13 + 1) % x.size()] = edges[k];
      }
      if (variant == 2)
        for (std::size_t k = 0; k < x.size(); ++k) x[k] = k % 3 == 0 ? -kNarrowMax : kNarrowMax;
      // Padding past cols is never read: poison it.
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = cols; j < ld; ++j)
          x[i * ld + j] = std::numeric_limits<float>::quiet_NaN();
      const std::vector<double> xd = widen(x);
      std::vector<std::uint64_t> v = random_field(rng, cols), w = random_field(rng, cols),
                                 y = random_field(rng, rows);
      if (variant == 2) {
        std::fill(v.begin(), v.end(), FieldQ::modulus - 1);
        std::fill(y.begin(), y.end(), FieldQ::modulus - 1);
      }
      std::vector<std::uint64_t> d1(rows), d2(rows), dt(cols), n1(rows, 7), n2(rows, 7),
          nt(cols, 7);
      ASSERT_TRUE(matvec_mod(xd.data(), rows, cols, ld, v.data(), d1.data()).ok()) << where;
      ASSERT_TRUE(matvec_mod(x.data(), rows, cols, ld, v.data(), n1.data()).ok()) << where;
      EXPECT_EQ(n1, d1) << "matvec " << where << " variant " << variant;
      EXPECT_EQ(n1, ref_matvec(xd, rows, cols, ld, v)) << "matvec " << where << " " << variant;
      ASSERT_TRUE(matvec2_mod(xd.data(), rows, cols, ld, v.data(), w.data(), d1.data(), d2.data())
                      .ok());
      n1.assign(rows, 7);
      ASSERT_TRUE(
          matvec2_mod(x.data(), rows, cols, ld, v.data(), w.data(), n1.data(), n2.data()).ok())
          << where;
      EXPECT_EQ(n1, d1) << "matvec2 " << where << " variant " << variant;
      EXPECT_EQ(n2, d2) << "matvec2 " << where << " variant " << variant;
      EXPECT_EQ(n2, ref_matvec(xd, rows, cols, ld, w)) << "matvec2 " << where << " " << variant;
      ASSERT_TRUE(matvec_t_mod(xd.data(), rows, cols, ld, y.data(), dt.data()).ok()) << where;
      ASSERT_TRUE(matvec_t_mod(x.data(), rows, cols, ld, y.data(), nt.data()).ok()) << where;
      EXPECT_EQ(nt, dt) << "matvec_t " << where << " variant " << variant;
      EXPECT_EQ(nt, ref_matvec_t(xd, rows, cols, ld, y)) << "matvec_t " << where << " " << variant;
    }
  }
}

// Calls the three narrow overloads on x and expects each to report `want`.
void expect_narrow_fault(const std::vector<float>& x, std::size_t rows, std::size_t cols,
                         std::size_t ld, Status want, const std::string& what) {
  std::vector<std::uint64_t> v(cols, 5), w(cols, 7), y(rows, 11), o1(rows), o2(rows), ot(cols);
  const Status got[3] = {
      matvec_mod(x.data(), rows, cols, ld, v.data(), o1.data()),
      matvec2_mod(x.data(), rows, cols, ld, v.data(), w.data(), o1.data(), o2.data()),
      matvec_t_mod(x.data(), rows, cols, ld, y.data(), ot.data())};
  const char* names[3] = {"matvec", "matvec2", "matvec_t"};
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(got[k].fault, want.fault) << names[k] << " " << what;
    EXPECT_EQ(got[k].row, want.row) << names[k] << " " << what;
    EXPECT_EQ(got[k].col, want.col) << names[k] << " " << what;
  }
}

// Narrow operands have a tighter range than float64 device values: each kind
// of bad value is reported at its place, in a vector body, a ragged tail and
// a later chunk, and on shapes the float64 kernels would send elsewhere.
TEST_P(MathFreivalds, NarrowOperandReportsEachFault) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const struct {
    float value;
    Fault fault;
    const char* name;
  } bad[] = {{nan, Fault::not_finite, "NaN"},          {inf, Fault::not_finite, "+Inf"},
             {-inf, Fault::not_finite, "-Inf"},        {0.5f, Fault::not_integral, "0.5"},
             {-2.25f, Fault::not_integral, "-2.25"},   {1e-30f, Fault::not_integral, "tiny"},
             {8388608.0f, Fault::out_of_range, "2^23"}, {-8388608.0f, Fault::out_of_range, "-2^23"},
             {1e30f, Fault::out_of_range, "1e30"}};
  const std::size_t shapes[][4] = {// rows, cols, bad row, bad col
                                   {1, 1, 0, 0},       {2, 9, 1, 8},      {3, 700, 2, 650},
                                   {6, 1030, 4, 1029}, {9, 16, 5, 3},     {700, 13, 600, 12},
                                   {1100, 600, 1000, 550}};
  for (const auto& sh : shapes) {
    const std::size_t rows = sh[0], cols = sh[1], ld = cols + 1;
    std::vector<float> x(rows * ld, -3.0f);
    for (const auto& b : bad) {
      std::vector<float> xb = x;
      xb[sh[2] * ld + sh[3]] = b.value;
      expect_narrow_fault(xb, rows, cols, ld, Status::at(b.fault, sh[2], sh[3]),
                          std::string(b.name) + " in " + std::to_string(rows) + "x" +
                              std::to_string(cols));
    }
  }
}

// The kernels walk narrow operands by column chunks (and x^T y by row blocks
// too), but the fault reported is the first in row-major order.
TEST_P(MathFreivalds, NarrowOperandFirstFaultInRowMajorOrder) {
  {
    const std::size_t rows = 6, cols = 1030;
    std::vector<float> x(rows * cols, 3.0f);
    x[1 * cols + 1000] = std::numeric_limits<float>::quiet_NaN();  // row 1, a late chunk
    x[3 * cols + 5] = 0.5f;                                        // row 3, the first chunk
    x[5 * cols + 0] = 8388608.0f;                                  // row 5, column 0
    expect_narrow_fault(x, rows, cols, cols, Status::at(Fault::not_finite, 1, 1000),
                        "late chunk of an early row");
    x[1 * cols + 999] = -8388608.0f;  // same row, one column earlier
    expect_narrow_fault(x, rows, cols, cols, Status::at(Fault::out_of_range, 1, 999),
                        "same row, earlier column");
  }
  {
    // x^T y folds every 512 rows: a fault in the second row block's first
    // chunk comes after one in the first block's last chunk.
    const std::size_t rows = 1100, cols = 600;
    std::vector<float> x(rows * cols, -1.0f);
    x[900 * cols + 3] = 8388608.0f;
    x[100 * cols + 590] = 0.5f;
    expect_narrow_fault(x, rows, cols, cols, Status::at(Fault::not_integral, 100, 590),
                        "two row blocks");
    x[100 * cols + 590] = -1.0f;
    expect_narrow_fault(x, rows, cols, cols, Status::at(Fault::out_of_range, 900, 3),
                        "second row block only");
  }
}

TEST_P(MathFreivalds, NarrowOperandRejectsBadArguments) {
  std::vector<float> x(6, 1.0f);
  std::vector<std::uint64_t> v(3, 1), out(3, 9), out2(3, 9);
  const float* none = nullptr;
  EXPECT_EQ(matvec_mod(none, 2, 3, 3, v.data(), out.data()).fault, Fault::invalid_argument);
  EXPECT_EQ(matvec_mod(x.data(), 2, 3, 2, v.data(), out.data()).fault, Fault::invalid_argument);
  EXPECT_EQ(matvec_mod(x.data(), 2, 3, 3, nullptr, out.data()).fault, Fault::invalid_argument);
  EXPECT_EQ(matvec_mod(x.data(), 2, 3, 3, v.data(), nullptr).fault, Fault::invalid_argument);
  EXPECT_EQ(matvec2_mod(none, 2, 3, 3, v.data(), v.data(), out.data(), out2.data()).fault,
            Fault::invalid_argument);
  EXPECT_EQ(matvec2_mod(x.data(), 2, 3, 2, v.data(), v.data(), out.data(), out2.data()).fault,
            Fault::invalid_argument);
  EXPECT_EQ(matvec2_mod(x.data(), 2, 3, 3, v.data(), nullptr, out.data(), out2.data()).fault,
            Fault::invalid_argument);
  EXPECT_EQ(matvec2_mod(x.data(), 2, 3, 3, v.data(), v.data(), out.data(), nullptr).fault,
            Fault::invalid_argument);
  EXPECT_EQ(matvec_t_mod(none, 2, 3, 3, v.data(), out.data()).fault, Fault::invalid_argument);
  EXPECT_EQ(matvec_t_mod(x.data(), 2, 3, 2, v.data(), out.data()).fault, Fault::invalid_argument);
  EXPECT_EQ(matvec_t_mod(x.data(), 2, 3, 3, nullptr, out.data()).fault, Fault::invalid_argument);
  // Empty shapes: nothing to read; the output that has a length is zeroed.
  EXPECT_TRUE(matvec_mod(none, 0, 3, 3, v.data(), out.data()).ok());
  EXPECT_TRUE(matvec_mod(x.data(), 1, 3, 0, v.data(), out.data()).ok());  // one row: ld unused
  ASSERT_TRUE(matvec_mod(x.data(), 2, 0, 0, v.data(), out.data()).ok());
  EXPECT_EQ(out[0], 0u);
  EXPECT_EQ(out[1], 0u);
  ASSERT_TRUE(matvec2_mod(x.data(), 2, 0, 0, v.data(), v.data(), out.data(), out2.data()).ok());
  EXPECT_EQ(out2[1], 0u);
  out.assign(3, 9);
  ASSERT_TRUE(matvec_t_mod(x.data(), 0, 3, 3, v.data(), out.data()).ok());
  EXPECT_EQ(out, (std::vector<std::uint64_t>{0, 0, 0}));
}

INSTANTIATE_TEST_SUITE_P(Paths, MathFreivalds, ::testing::ValuesIn(all_paths()), path_param_name);

}  // namespace
}  // namespace math
}  // namespace veil
