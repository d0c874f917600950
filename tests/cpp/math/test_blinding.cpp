// Private-inference blinding over p_b with the 24-bit limb split: masking,
// exact limb products at width 4096, unmasking, and the limb checks.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "math/blinding.h"
#include "math/freivalds.h"
#include "math/fused.h"
#include "math/prg.h"
#include "math_test_util.h"

namespace veil {
namespace math {
namespace {

using namespace testing_util;

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

  std::vector<std::uint64_t> u(B * m);
  ASSERT_TRUE(blind_correction(r.data(), B, n, n, w.data(), m, m, u.data(), m).ok());
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
  std::uint64_t u = 0;
  ASSERT_TRUE(blind_correction(&rmax, 1, 1, 1, &w, 1, 1, &u, 1).ok());
  const double ylo = lo * w, yhi = hi * w;
  ASSERT_TRUE(unblind(&ylo, &yhi, 1, 1, 1, &u, 1, &y, 1).ok());
  EXPECT_EQ(y, -15.0);
}

}  // namespace
}  // namespace math
}  // namespace veil
