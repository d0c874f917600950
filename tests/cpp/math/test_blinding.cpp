// Private-inference blinding over p_b with the 24-bit limb split: masking,
// exact limb products at width 4096, unmasking, and the limb checks.

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "math/blinding.h"
#include "math/freivalds.h"
#include "math/parallel.h"
#include "math/fused.h"
#include "math/prg.h"
#include "math_test_util.h"

namespace veil {
namespace math {
namespace {

using namespace testing_util;

// U = R W mod p_b through the packed exact GEMM.
Status correction(const std::vector<std::uint64_t>& r, std::size_t rows, std::size_t n,
                  const std::vector<double>& w, std::size_t m, std::vector<std::uint64_t>* u) {
  std::vector<double> panels(correction_panel_doubles(n, m));
  const Status packed = pack_correction_weights(w.data(), n, m, m, panels.data());
  if (!packed.ok()) return packed;
  std::vector<double> work(correction_work_doubles(rows, n));
  u->assign(rows * m, 0);
  return blind_correction(r.data(), rows, n, n, panels.data(), m, u->data(), m, work.data());
}

// The reference: 128-bit scalar field arithmetic.
std::vector<std::uint64_t> correction_reference(const std::vector<std::uint64_t>& r,
                                                std::size_t rows, std::size_t n,
                                                const std::vector<double>& w, std::size_t m) {
  std::vector<std::uint64_t> u(rows * m);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < m; ++j) {
      std::uint64_t acc = 0;
      for (std::size_t k = 0; k < n; ++k)
        acc = FieldPb::add(acc, FieldPb::mul(r[i * n + k],
                                             FieldPb::from_int(static_cast<std::int64_t>(w[k * m + j]))));
      u[i * m + j] = acc;
    }
  return u;
}

TEST(MathBlinding, RoundTripAtWidth4096) {
  std::mt19937_64 rng(21);
  const std::size_t B = 3, n = 4096, m = 5;
  // Activations at f_a = 8 clipped to |a| < 128, weights at f_w = 8 with |w| < 128.
  const std::int64_t bound = (std::int64_t{1} << 15) - 1;
  const std::vector<double> xq = random_ints(rng, B * n, bound);
  std::vector<double> w = random_ints(rng, n * m, bound);
  for (std::size_t k = 0; k < n; ++k) w[k * m] = static_cast<double>(bound);  // worst-case column
  const double l1 = static_cast<double>(bound) * n;  // the worst-case column's L1 norm
  ASSERT_TRUE(blind_limbs_exact(l1));
  ASSERT_TRUE(blind_result_recoverable(static_cast<double>(bound), l1));

  PrgKey key{};
  key.bytes[0] = 7;
  Prg prg;
  ASSERT_TRUE(prg.init(key).ok());
  std::vector<std::uint64_t> r(B * n);
  ASSERT_TRUE(prg.uniform_mod_pb(prg_stream(0, 0), r.data(), r.size()).ok());

  std::vector<double> lo(B * n), hi(B * n);
  ASSERT_TRUE(blind(xq.data(), B, n, n, r.data(), n, lo.data(), hi.data(), n).ok());
  for (std::size_t e = 0; e < B * n; ++e) {
    ASSERT_GE(lo[e], 0.0);
    ASSERT_LT(lo[e], kBlindLimbBase);
    ASSERT_GE(hi[e], 0.0);
    ASSERT_LT(hi[e], kBlindLimbBase);
    const std::uint64_t xt = static_cast<std::uint64_t>(lo[e]) + (static_cast<std::uint64_t>(hi[e]) << 24);
    ASSERT_EQ(xt, FieldPb::add(FieldPb::from_int(static_cast<std::int64_t>(xq[e])), r[e]));
  }

  // The device's limb products: exact because (2^24 - 1) * l1 < 2^53.
  const std::vector<double> ylo = matmul(lo, w, B, n, m), yhi = matmul(hi, w, B, n, m);
  for (double v : ylo) ASSERT_LT(std::fabs(v), 9007199254740992.0);
  // Each limb product passes its Freivalds check.
  const std::vector<std::uint64_t> s = random_field(rng, m);
  std::vector<std::uint64_t> ws(n);
  ASSERT_TRUE(matvec_mod(w.data(), n, m, m, s.data(), ws.data()).ok());
  // (as the enclave checks them: Y~ s against X~ (W s), one fused pass with no outputs)
  auto limb_check = [&](const std::vector<double>& x, const std::vector<double>& y) {
    std::vector<std::uint64_t> expected(B);
    EXPECT_TRUE(matvec_mod(x.data(), B, n, n, ws.data(), expected.data()).ok());
    ForwardArgs f;
    f.z = y.data();
    f.rows = B;
    f.cols = f.ld_z = m;
    f.s = s.data();
    f.expected = expected.data();
    return fused_forward(f).status;
  };
  EXPECT_TRUE(limb_check(lo, ylo).ok());
  EXPECT_TRUE(limb_check(hi, yhi).ok());

  std::vector<std::uint64_t> u;
  ASSERT_TRUE(correction(r, B, n, w, m, &u).ok());
  std::vector<double> y(B * m);
  ASSERT_TRUE(unblind(ylo.data(), yhi.data(), B, m, m, u.data(), m, y.data(), m).ok());
  EXPECT_EQ(y, matmul(xq, w, B, n, m));

  // A tampered high limb fails its check (and would unmask to garbage).
  std::vector<double> bad = yhi;
  bad[1 * m + 2] += 1;
  const Status st = limb_check(hi, bad);
  EXPECT_EQ(st.fault, Fault::mismatch);
  EXPECT_EQ(st.row, 1u);
}

TEST(MathBlinding, BudgetPredicatesAndBadInputs) {
  // (2^24 - 1) * 2^29 < 2^53 but (2^24 - 1) * 2^29.01 is not.
  EXPECT_TRUE(blind_limbs_exact(std::ldexp(1.0, 29)));
  EXPECT_FALSE(blind_limbs_exact(std::ldexp(1.0, 29) * 1.01));
  EXPECT_TRUE(blind_result_recoverable(std::ldexp(1.0, 15), std::ldexp(1.0, 31)));
  EXPECT_FALSE(blind_result_recoverable(std::ldexp(1.0, 15), std::ldexp(1.0, 33)));

  const double x = 1.0;
  const std::uint64_t r_bad = FieldPb::modulus;
  double lo = 0, hi = 0;
  EXPECT_EQ(blind(&x, 1, 1, 1, &r_bad, 1, &lo, &hi, 1).fault, Fault::invalid_argument);
  const double frac = 0.5;
  const std::uint64_t r = 3;
  EXPECT_EQ(blind(&frac, 1, 1, 1, &r, 1, &lo, &hi, 1).fault, Fault::not_integral);
  const double yl = std::nan(""), yh = 0;
  double y = 0;
  EXPECT_EQ(unblind(&yl, &yh, 1, 1, 1, &r, 1, &y, 1).fault, Fault::not_finite);
  // Negative values and centring: X = -5 with R = p_b - 1 wraps and comes back.
  const double neg = -5;
  const std::uint64_t rmax = FieldPb::modulus - 1;
  ASSERT_TRUE(blind(&neg, 1, 1, 1, &rmax, 1, &lo, &hi, 1).ok());
  const double w = 3;
  std::vector<std::uint64_t> u;
  ASSERT_TRUE(correction({rmax}, 1, 1, {w}, 1, &u).ok());
  const double ylo = lo * w, yhi = hi * w;
  ASSERT_TRUE(unblind(&ylo, &yhi, 1, 1, 1, u.data(), 1, &y, 1).ok());
  EXPECT_EQ(y, -15.0);
}

class MathCorrection : public MathPathTest {};

// The exact GEMM equals 128-bit field arithmetic on every path, across tile,
// depth-block and column-block edges, with W at the exactness bound.
TEST_P(MathCorrection, MatchesScalarFieldArithmetic) {
  std::mt19937_64 rng(5);
  const std::size_t shapes[][3] = {{1, 1, 1}, {5, 300, 9}, {7, 513, 260}, {64, 257, 520}};
  for (const auto& shape : shapes) {
    const std::size_t rows = shape[0], n = shape[1], m = shape[2];
    // |w| up to 2^29 / n per entry, so a full column of the maximum reaches the bound.
    const std::int64_t bound = static_cast<std::int64_t>(std::ldexp(1.0, 29) / n) - 1;
    std::vector<double> w = random_ints(rng, n * m, bound);
    for (std::size_t k = 0; k < n; ++k) w[k * m + m - 1] = -static_cast<double>(bound);
    std::vector<std::uint64_t> r(rows * n);
    for (auto& x : r) x = rng() % FieldPb::modulus;
    r[0] = FieldPb::modulus - 1;
    std::vector<std::uint64_t> u;
    ASSERT_TRUE(correction(r, rows, n, w, m, &u).ok());
    EXPECT_EQ(u, correction_reference(r, rows, n, w, m)) << rows << "x" << n << "x" << m;
    // Row blocks give the same U whatever the split (how threads divide R).
    if (rows > 1) {
      std::vector<std::uint64_t> top, rest;
      const std::vector<std::uint64_t> r_top(r.begin(), r.begin() + n);
      const std::vector<std::uint64_t> r_rest(r.begin() + n, r.end());
      ASSERT_TRUE(correction(r_top, 1, n, w, m, &top).ok());
      ASSERT_TRUE(correction(r_rest, rows - 1, n, w, m, &rest).ok());
      top.insert(top.end(), rest.begin(), rest.end());
      EXPECT_EQ(top, u);
    }
  }
}

TEST_P(MathCorrection, RefusesWhatIsNotExact) {
  // A column whose L1 norm reaches 2^53 / (2^24 - 1) could round: refused, naming it.
  const std::size_t n = 4, m = 3;
  std::vector<double> w(n * m, 1.0);
  for (std::size_t k = 0; k < n; ++k) w[k * m + 2] = std::ldexp(1.0, 28);
  std::vector<double> panels(correction_panel_doubles(n, m));
  const Status st = pack_correction_weights(w.data(), n, m, m, panels.data());
  EXPECT_EQ(st.fault, Fault::out_of_range);
  EXPECT_EQ(st.col, 2u);
  w[1] = 0.5;
  EXPECT_EQ(pack_correction_weights(w.data(), n, m, m, panels.data()).fault, Fault::not_integral);
  // R must be reduced.
  std::vector<std::uint64_t> u;
  EXPECT_EQ(correction({1, FieldPb::modulus}, 1, 2, {1, 1}, 1, &u).fault, Fault::invalid_argument);
}

// Blocks of R's rows on 0, 1 and 3 lent threads (parallel.h), as the enclave runs
// them: the same U as one call on one thread.
TEST(MathCorrectionThreads, SameUForEveryThreadCount) {
  std::mt19937_64 rng(9);
  const std::size_t rows = 64, n = 300, m = 70, per_block = 16;
  const std::vector<double> w = random_ints(rng, n * m, 1000);
  std::vector<std::uint64_t> r(rows * n);
  for (auto& x : r) x = rng() % FieldPb::modulus;
  std::vector<std::uint64_t> want;
  ASSERT_TRUE(correction(r, rows, n, w, m, &want).ok());
  std::vector<double> panels(correction_panel_doubles(n, m));
  ASSERT_TRUE(pack_correction_weights(w.data(), n, m, m, panels.data()).ok());
  for (unsigned workers : {0u, 1u, 3u}) {
    WorkerPool pool;
    std::vector<std::thread> lent;
    for (unsigned t = 0; t < workers; ++t) lent.emplace_back([&pool] { pool.serve(); });
    std::vector<std::uint64_t> u(rows * m);
    std::vector<std::vector<double>> work(rows / per_block,
                                          std::vector<double>(correction_work_doubles(per_block, n)));
    std::vector<Status> status(work.size());
    auto block = [&](std::size_t b) {
      status[b] = blind_correction(r.data() + b * per_block * n, per_block, n, n, panels.data(), m,
                                   u.data() + b * per_block * m, m, work[b].data());
    };
    {
      UsePool use(&pool);
      parallel_for(work.size(), block);
    }
    pool.stop();
    for (auto& t : lent) t.join();
    for (const Status& st : status) ASSERT_TRUE(st.ok());
    EXPECT_EQ(u, want) << workers << " workers";
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, MathCorrection, ::testing::ValuesIn(all_paths()), path_param_name);

}  // namespace
}  // namespace math
}  // namespace veil
