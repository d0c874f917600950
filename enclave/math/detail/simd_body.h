// Internal: the vector kernels, written once against a small "ops" struct V
// and compiled once per instruction set. No include guard on purpose: an ISA
// translation unit defines VEIL_SIMD_TARGET (a target attribute) and the ops
// struct V, then includes this file inside an anonymous namespace, so each
// copy has internal linkage and its own target.
//
// Mod-q products (docs/arithmetic.md, "vector reduction"): a device value x
// (|x| < 2^53, integral) is split into its magnitude a < 2^53 and sign; the
// sign flips the field factor b to q - b. With a = a1 2^32 + a0 and
// b = b1 2^32 + b0 (a1 < 2^21, b1 < 2^29) the four 32x32->64 partial products
// give a*b = p00 + (p01 + p10) 2^32 + p11 2^64, accumulated lazily.
//
// Kernels templated on an operand type T take float64 device values
// (T = double) or narrow operands (T = float, freivalds.h): V::load and
// V::store widen and narrow float32 in registers, so a narrow matrix is never
// copied to float64.

// Shared constants.
constexpr std::uint64_t kQ = FieldQ::modulus;
constexpr std::uint64_t kM32 = 0xffffffffull;
constexpr std::uint64_t kM29 = (1ull << 29) - 1;
constexpr std::uint64_t kM52 = (1ull << 52) - 1;

using VD = V::D;
using VI = V::I;
using VM = V::M;

template <class T>
constexpr bool kNarrow = std::is_same<T, float>::value;

// Per-lane lazy accumulators of a row's dot product:
// value = lo + mid * 2^32 + hi * 2^64. Per step lo grows by < 2^32, mid by
// < 2^33, hi by < 2^51, so a chunk of kChunk elements cannot overflow.
struct RowDot {
  VI lo, mid, hi;
};

// Magnitude of an integral double with |x| < 2^53, from its bits:
// mantissa (with the implicit bit) >> (1075 - biased exponent). Zero and
// lanes that fail the range check shift by >= 64, which yields 0.
VEIL_SIMD_TARGET inline VI magnitude(VD ax) {
  const VI bits = V::bits(ax);
  const VI e = V::srli<52>(bits);
  const VI mant = V::ori(V::andi(bits, V::dupi(kM52)), V::dupi(1ull << 52));
  return V::srlv(mant, V::subi(V::dupi(1075), e));
}

// Lanes that pass the range check: |x| < 2^53 (false for NaN and Inf) and integral.
VEIL_SIMD_TARGET inline VM in_range(VD x, VD ax) {
  return V::mand(V::lt(ax, V::dup(kExactLimit)), V::eq(V::trunc(x), x));
}

VEIL_SIMD_TARGET inline void rowdot_step(RowDot& acc, VD x, VI s, VM& bad) {
  const VD ax = V::abs(x);
  bad = V::mor(bad, V::mandnot(V::mtrue(), in_range(x, ax)));
  const VI a = magnitude(ax);
  const VI b = V::blendi(V::lt(x, V::zero()), s, V::subi(V::dupi(kQ), s));
  const VI a1 = V::srli<32>(a);
  const VI b1 = V::srli<32>(b);
  const VI p00 = V::mul32(a, b);
  const VI mid = V::addi(V::mul32(a, b1), V::mul32(a1, b));  // < 2^62
  const VI p11 = V::mul32(a1, b1);                            // < 2^50
  acc.lo = V::addi(acc.lo, V::andi(p00, V::dupi(kM32)));
  acc.mid = V::addi(acc.mid, V::addi(V::srli<32>(p00), V::andi(mid, V::dupi(kM32))));
  acc.hi = V::addi(acc.hi, V::addi(V::srli<32>(mid), p11));
}

VEIL_SIMD_TARGET inline std::uint64_t rowdot_value(const RowDot& acc) {
  alignas(64) std::uint64_t lo[V::W], mid[V::W], hi[V::W];
  V::storei(lo, acc.lo);
  V::storei(mid, acc.mid);
  V::storei(hi, acc.hi);
  u128 total = 0;
  for (std::size_t k = 0; k < V::W; ++k) {
    total += static_cast<u128>(lo[k]) + (static_cast<u128>(mid[k]) << 32) +
             (static_cast<u128>(hi[k]) << 64);
  }
  return FieldQ::reduce128(total);
}

// First range fault in x[0..len), which the caller knows exists.
inline Status first_fault(const double* x, std::size_t len, std::size_t row, std::size_t col0) {
  for (std::size_t k = 0; k < len; ++k) {
    const Fault f = classify(x[k]);
    if (f != Fault::none) return Status::at(f, row, col0 + k);
  }
  return Status::at(Fault::not_finite, row, col0);  // unreachable when the caller is right
}

// Checks x[0..len) (one chunk of row `row`, starting at column col0), adds
// x . s mod q to *sum and, if kStoreZ, writes zb[k] = x[k] * inv and, if
// kMask too, mb[k] = relu_mask_of(zb[k]) while z is still in a register.
// Each element of x is loaded once (only a fault's location is looked up
// again), so x may be host memory the host rewrites meanwhile: what is
// checked is what zb holds.
template <bool kStoreZ, bool kMask = false>
VEIL_SIMD_TARGET inline Status check_dot_chunk(const double* x, const std::uint64_t* s,
                                               std::size_t len, double inv, double* zb,
                                               std::size_t row, std::size_t col0,
                                               std::uint64_t* sum, std::uint8_t* mb = nullptr) {
  static_assert(kStoreZ || !kMask, "the mask is taken from the z being stored");
  RowDot acc{V::zeroi(), V::zeroi(), V::zeroi()};
  VM bad = V::mnone();
  const VD vinv = V::dup(inv);
  std::size_t k = 0;
  for (; k + V::W <= len; k += V::W) {
    const VD v = V::load(x + k);
    rowdot_step(acc, v, V::loadi(s + k), bad);
    if (kStoreZ) {
      const VD z = V::mul(v, vinv);
      V::store(zb + k, z);
      if (kMask) V::store_bytes(mb + k, V::gt(z, V::zero()));  // false for NaN, as z > 0
    }
  }
  if (V::any(bad)) return first_fault(x, len, row, col0);
  DotAccumulator tail;
  for (; k < len; ++k) {
    const double xk = x[k];  // one load: x may be host memory (docs/design.md §5)
    const Fault f = classify(xk);
    if (f != Fault::none) return Status::at(f, row, col0 + k);
    tail.add(xk, s[k]);
    if (kStoreZ) zb[k] = xk * inv;
    if (kMask) mb[k] = relu_mask_of(zb[k]);
  }
  *sum = FieldQ::add(*sum, FieldQ::add(rowdot_value(acc), tail.value()));
  return Status::success();
}

// The vector twin of quantize_scaled().
VEIL_SIMD_TARGET inline VD quantize_vec(VD y, VD lim, VD nlim, VD lim1, VD nlim1,
                                        std::size_t* saturated) {
  y = V::min(V::max(y, nlim1), lim1);
  VD r = V::round_even(y);
  *saturated += V::count(V::mor(V::gt(r, lim), V::lt(r, nlim)));
  r = V::min(V::max(r, nlim), lim);
  return V::add(r, V::zero());
}

VEIL_SIMD_TARGET Status simd_range(const double* x, std::size_t rows, std::size_t cols,
                                   std::size_t ld) {
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ld;
    VM bad = V::mnone();
    std::size_t k = 0;
    for (; k + V::W <= cols; k += V::W) {
      const VD v = V::load(xr + k);
      bad = V::mor(bad, V::mandnot(V::mtrue(), in_range(v, V::abs(v))));
    }
    if (V::any(bad)) return first_fault(xr, cols, i, 0);
    for (; k < cols; ++k) {
      const Fault f = classify(xr[k]);
      if (f != Fault::none) return Status::at(f, i, k);
    }
  }
  return Status::success();
}

// The exact integer paths, row by row: any value that passes the range check.
VEIL_SIMD_TARGET Status exact_matvec(const double* x, std::size_t rows, std::size_t cols,
                                     std::size_t ld, const std::uint64_t* v, std::uint64_t* out) {
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ld;
    std::uint64_t sum = 0;
    for (std::size_t c0 = 0; c0 < cols; c0 += kChunk) {
      const std::size_t len = cols - c0 < kChunk ? cols - c0 : kChunk;
      const Status st = check_dot_chunk<false>(xr + c0, v + c0, len, 0.0, nullptr, i, c0, &sum);
      if (!st.ok()) return st;
    }
    out[i] = sum;
  }
  return Status::success();
}

VEIL_SIMD_TARGET Status exact_matvec_t(const double* x, std::size_t rows, std::size_t cols,
                                       std::size_t ld, const std::uint64_t* y,
                                       std::uint64_t* out) {
  for (std::size_t j = 0; j < cols; ++j) out[j] = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ld;
    const std::uint64_t yi = y[i];
    const VI yb = V::dupi(yi), nyb = V::dupi(kQ - yi);
    const VI y1 = V::dupi(yi >> 32), ny1 = V::dupi((kQ - yi) >> 32);
    VM bad = V::mnone();
    std::size_t k = 0;
    // out[] holds lazily reduced sums < 2^61 + 4; each term is < 2^62 + 2^54.
    for (; k + V::W <= cols; k += V::W) {
      const VD v = V::load(xr + k);
      const VD av = V::abs(v);
      bad = V::mor(bad, V::mandnot(V::mtrue(), in_range(v, av)));
      const VI a = magnitude(av);
      const VM neg = V::lt(v, V::zero());
      const VI b = V::blendi(neg, yb, nyb);
      const VI b1 = V::blendi(neg, y1, ny1);
      const VI a1 = V::srli<32>(a);
      const VI p00 = V::mul32(a, b);
      const VI mid = V::addi(V::mul32(a, b1), V::mul32(a1, b));
      const VI p11 = V::mul32(a1, b1);
      VI t = V::addi(V::andi(p00, V::dupi(kQ)), V::srli<61>(p00));
      t = V::addi(t, V::slli<32>(V::andi(mid, V::dupi(kM29))));
      t = V::addi(t, V::srli<29>(mid));
      t = V::addi(t, V::slli<3>(p11));
      VI acc = V::addi(V::loadi(out + k), t);
      acc = V::addi(V::andi(acc, V::dupi(kQ)), V::srli<61>(acc));
      V::storei(out + k, acc);
      // One row is at most a few thousand vectors: test per row, not per vector.
    }
    if (V::any(bad)) return first_fault(xr, cols, i, 0);
    for (; k < cols; ++k) {
      const Fault f = classify(xr[k]);
      if (f != Fault::none) return Status::at(f, i, k);
      out[k] = FieldQ::reduce(out[k] + FieldQ::mul(FieldQ::from_int(to_int(xr[k])), yi));
    }
  }
  for (std::size_t j = 0; j < cols; ++j) out[j] = FieldQ::reduce(out[j]);
  return Status::success();
}

// ---- Small operands in float64 --------------------------------------------
// The operands the enclave produced itself (quantized activations and
// gradients) are integers far below 2^53. When every element of a chunk is an
// integer with |x| < 2^23, sum_j x_j v_j mod q is computed exactly in float64
// instead: v = v0 + v1 2^21 + v2 2^42 with 21-bit limbs, each product
// |x_j vk_j| < 2^44, and a sum of at most kChunk = 2^9 such products (or, in
// x^T y, of at most kSmallRows rows) stays below 2^53, so every partial sum is
// an exact integer whatever the order. The field value is the integer path's,
// so all kernel paths stay bit-identical. Chunks that hold a larger value, or
// one failing the range check, take the exact integer path, which range-checks
// as before. Narrow operands are small by contract, so for them a chunk that
// is not small holds a fault, and the kernels report the first one instead.
constexpr double kSmallLimit = kNarrowLimit;  // 2^23
constexpr std::uint64_t kM21 = (1ull << 21) - 1;
constexpr std::size_t kSmallRows = 512;     // rows summed per column before a fold
constexpr std::size_t kSmallMinRows = 4;    // below this, splitting v costs more than it saves

// One field vector split into float64 limbs, for one chunk of columns.
struct Limbs {
  alignas(64) double l0[kChunk];
  alignas(64) double l1[kChunk];
  alignas(64) double l2[kChunk];
};

inline void split_limbs(const std::uint64_t* v, std::size_t len, Limbs* out) {
  for (std::size_t k = 0; k < len; ++k) {
    out->l0[k] = static_cast<double>(v[k] & kM21);
    out->l1[k] = static_cast<double>((v[k] >> 21) & kM21);
    out->l2[k] = static_cast<double>(v[k] >> 42);
  }
}

// b * 2^k mod q for b < q: with 2^61 = 1 (mod q), a rotation of b's 61 bits.
template <int k>
inline std::uint64_t times_pow2(std::uint64_t b) {
  return FieldQ::reduce(((b << k) & kQ) + (b >> (61 - k)));
}

// Field value of s0 + s1 2^21 + s2 2^42 for exact integer sums |sk| < 2^53.
inline std::uint64_t fold_limbs(double s0, double s1, double s2) {
  const std::uint64_t a = FieldQ::from_int(static_cast<std::int64_t>(s0));
  const std::uint64_t b = FieldQ::from_int(static_cast<std::int64_t>(s1));
  const std::uint64_t c = FieldQ::from_int(static_cast<std::int64_t>(s2));
  return FieldQ::add(a, FieldQ::add(times_pow2<21>(b), times_pow2<42>(c)));
}

// Lanes holding an integer below 2^23 in magnitude (false for NaN and Inf).
VEIL_SIMD_TARGET inline VM is_small(VD x) {
  return V::mand(V::lt(V::abs(x), V::dup(kSmallLimit)), V::eq(V::trunc(x), x));
}

inline bool is_small(double x) {
  const double ax = x < 0 ? -x : x;
  return ax < kSmallLimit && static_cast<double>(static_cast<std::int64_t>(x)) == x;
}

VEIL_SIMD_TARGET inline double hsum(VD v) {
  alignas(64) double lanes[V::W];
  V::store(lanes, v);
  double total = 0;
  for (std::size_t k = 0; k < V::W; ++k) total += lanes[k];
  return total;
}

// x . v mod q for K vectors over one chunk, v given by its limbs
// (lv[r][c][k] is limb c of v_r at column k), if every element of x is small:
// returns true and adds to sums[]; returns false and changes nothing
// otherwise. Sharing the load and the test is what makes K = 2 cheaper than
// two calls.
template <int K, class T>
VEIL_SIMD_TARGET inline bool small_dot_chunk(const T* x, const double* const (*lv)[3],
                                             std::size_t len, std::uint64_t* sums) {
  // Two vectors per step for one limb set: the adds' latency, not their
  // count, bounds this loop, so it keeps 6 independent sums in flight.
  constexpr int U = K == 1 ? 2 : 1;
  VD acc[U][K][3];
  for (int u = 0; u < U; ++u)
    for (int r = 0; r < K; ++r) acc[u][r][0] = acc[u][r][1] = acc[u][r][2] = V::zero();
  VM ok = V::mtrue();
  std::size_t k = 0;
  for (; k + U * V::W <= len; k += U * V::W) {
    for (int u = 0; u < U; ++u) {
      const std::size_t ku = k + u * V::W;
      const VD xv = V::load(x + ku);
      ok = V::mand(ok, is_small(xv));
      for (int r = 0; r < K; ++r) {
        acc[u][r][0] = V::add(acc[u][r][0], V::mul(xv, V::load(lv[r][0] + ku)));
        acc[u][r][1] = V::add(acc[u][r][1], V::mul(xv, V::load(lv[r][1] + ku)));
        acc[u][r][2] = V::add(acc[u][r][2], V::mul(xv, V::load(lv[r][2] + ku)));
      }
    }
  }
  if (V::any(V::mandnot(V::mtrue(), ok))) return false;
  double tail[K][3] = {};
  for (; k < len; ++k) {
    if (!is_small(x[k])) return false;
    for (int r = 0; r < K; ++r) {
      tail[r][0] += x[k] * lv[r][0][k];
      tail[r][1] += x[k] * lv[r][1][k];
      tail[r][2] += x[k] * lv[r][2][k];
    }
  }
  for (int r = 0; r < K; ++r) {
    double total[3];
    for (int c = 0; c < 3; ++c) {
      VD lanes = acc[0][r][c];
      for (int u = 1; u < U; ++u) lanes = V::add(lanes, acc[u][r][c]);
      total[c] = hsum(lanes) + tail[r][c];
    }
    sums[r] = FieldQ::add(sums[r], fold_limbs(total[0], total[1], total[2]));
  }
  return true;
}

// A narrow operand held an element that failed the small test, i.e. one that
// is not narrow: name the first in row-major order (the chunk or block that
// failed need not hold it).
inline Status first_narrow_fault(const float* x, std::size_t rows, std::size_t cols,
                                 std::size_t ld) {
  const Status st = first_range_fault(x, rows, cols, ld);
  // is_small() and classify(float) accept the same values, so st is a fault;
  // never report success for a pass that stopped early.
  return st.ok() ? Status::at(Fault::out_of_range) : st;
}

// After any fault the first bad element in row-major order is reported, as
// the row-by-row paths do: the column-blocked loops below may meet a later one first.
VEIL_SIMD_TARGET inline Status row_major_fault(const double* x, std::size_t rows, std::size_t cols, std::size_t ld,
                              Status found) {
  const Status first = simd_range(x, rows, cols, ld);
  return first.ok() ? found : first;
}

// out_r = x v_r mod q for K vectors in one pass over x, column chunk by column
// chunk so that the split vectors stay in L1.
template <int K, class T>
VEIL_SIMD_TARGET Status matvec_k(const T* x, std::size_t rows, std::size_t cols,
                                 std::size_t ld, const std::uint64_t* const* v,
                                 std::uint64_t* const* out) {
  Limbs lv[K];
  for (std::size_t c0 = 0; c0 < cols; c0 += kChunk) {
    const std::size_t len = cols - c0 < kChunk ? cols - c0 : kChunk;
    const double* lp[K][3];
    for (int r = 0; r < K; ++r) {
      split_limbs(v[r] + c0, len, &lv[r]);
      lp[r][0] = lv[r].l0;
      lp[r][1] = lv[r].l1;
      lp[r][2] = lv[r].l2;
    }
    bool fast = true;  // until a row of this chunk needs the integer path
    for (std::size_t i = 0; i < rows; ++i) {
      const T* xr = x + i * ld + c0;
      std::uint64_t part[K] = {};
      if (!(fast && small_dot_chunk<K>(xr, lp, len, part))) {
        if constexpr (kNarrow<T>) {
          return first_narrow_fault(x, rows, cols, ld);
        } else {
          fast = false;
          for (int r = 0; r < K; ++r) {
            const Status st =
                check_dot_chunk<false>(xr, v[r] + c0, len, 0.0, nullptr, i, c0, &part[r]);
            if (!st.ok()) return row_major_fault(x, rows, cols, ld, st);
          }
        }
      }
      for (int r = 0; r < K; ++r) out[r][i] = c0 == 0 ? part[r] : FieldQ::add(out[r][i], part[r]);
    }
  }
  return Status::success();
}

// Narrow operands always take the float64 path: they have no integer path,
// and splitting v costs about what the integer path would for a few rows.
template <class T>
VEIL_SIMD_TARGET Status simd_matvec(const T* x, std::size_t rows, std::size_t cols,
                                    std::size_t ld, const std::uint64_t* v, std::uint64_t* out) {
  if constexpr (!kNarrow<T>) {
    if (rows < kSmallMinRows) return exact_matvec(x, rows, cols, ld, v, out);
  }
  return matvec_k<1>(x, rows, cols, ld, &v, &out);
}

template <class T>
VEIL_SIMD_TARGET Status simd_matvec2(const T* x, std::size_t rows, std::size_t cols,
                                     std::size_t ld, const std::uint64_t* v1,
                                     const std::uint64_t* v2, std::uint64_t* out1,
                                     std::uint64_t* out2) {
  if constexpr (!kNarrow<T>) {
    if (rows < kSmallMinRows) {
      const Status st = exact_matvec(x, rows, cols, ld, v1, out1);
      return st.ok() ? exact_matvec(x, rows, cols, ld, v2, out2) : st;
    }
  }
  const std::uint64_t* v[2] = {v1, v2};
  std::uint64_t* out[2] = {out1, out2};
  return matvec_k<2>(x, rows, cols, ld, v, out);
}

// Adds R rows of small values times y's limbs into the column accumulators
// of one chunk: one load and store of the accumulators per R rows (R = 2
// keeps AVX2's 16 registers enough; the sums are exact in any order).
template <int R, class T>
VEIL_SIMD_TARGET inline void small_rows_t(const T* x, std::size_t ld, const std::uint64_t* y,
                                          std::size_t len, Limbs* acc, VM* ok, bool* tail_ok) {
  double yl[R][3];
  VD d[R][3];
  for (int r = 0; r < R; ++r) {
    yl[r][0] = static_cast<double>(y[r] & kM21);
    yl[r][1] = static_cast<double>((y[r] >> 21) & kM21);
    yl[r][2] = static_cast<double>(y[r] >> 42);
    for (int c = 0; c < 3; ++c) d[r][c] = V::dup(yl[r][c]);
  }
  double* a[3] = {acc->l0, acc->l1, acc->l2};
  std::size_t k = 0;
  for (; k + V::W <= len; k += V::W) {
    VD xv[R];
    for (int r = 0; r < R; ++r) {
      xv[r] = V::load(x + r * ld + k);
      *ok = V::mand(*ok, is_small(xv[r]));
    }
    for (int c = 0; c < 3; ++c) {
      VD t = V::load(a[c] + k);
      for (int r = 0; r < R; ++r) t = V::add(t, V::mul(xv[r], d[r][c]));
      V::store(a[c] + k, t);
    }
  }
  for (; k < len; ++k) {
    for (int r = 0; r < R; ++r) {
      const double xs = x[r * ld + k];
      *tail_ok = *tail_ok && is_small(xs);
      for (int c = 0; c < 3; ++c) a[c][k] += xs * yl[r][c];
    }
  }
}

// x^T y by column chunks: three float64 accumulators per column take rows of
// small values, folded into the field every kSmallRows rows. Narrow operands
// take this path whatever the row count, as in simd_matvec.
template <class T>
VEIL_SIMD_TARGET Status simd_matvec_t(const T* x, std::size_t rows, std::size_t cols,
                                      std::size_t ld, const std::uint64_t* y, std::uint64_t* out) {
  if constexpr (!kNarrow<T>) {
    if (rows < kSmallMinRows) return exact_matvec_t(x, rows, cols, ld, y, out);
  }
  Limbs acc;
  alignas(64) std::uint64_t part[kChunk];
  for (std::size_t c0 = 0; c0 < cols; c0 += kChunk) {
    const std::size_t len = cols - c0 < kChunk ? cols - c0 : kChunk;
    for (std::size_t j = 0; j < len; ++j) out[c0 + j] = 0;
    bool fast = true;  // until a block of this chunk needs the integer path
    for (std::size_t r0 = 0; r0 < rows; r0 += kSmallRows) {
      const std::size_t rb = rows - r0 < kSmallRows ? rows - r0 : kSmallRows;
      if (fast) {
        for (std::size_t j = 0; j < len; ++j) acc.l0[j] = acc.l1[j] = acc.l2[j] = 0.0;
        VM ok = V::mtrue();
        bool tail_ok = true;
        std::size_t i = r0;
        for (; i + 2 <= r0 + rb; i += 2)
          small_rows_t<2>(x + i * ld + c0, ld, y + i, len, &acc, &ok, &tail_ok);
        if (i < r0 + rb) small_rows_t<1>(x + i * ld + c0, ld, y + i, len, &acc, &ok, &tail_ok);
        fast = tail_ok && !V::any(V::mandnot(V::mtrue(), ok));
        if (fast) {
          for (std::size_t j = 0; j < len; ++j) {
            out[c0 + j] = FieldQ::add(out[c0 + j], fold_limbs(acc.l0[j], acc.l1[j], acc.l2[j]));
          }
          continue;
        }
      }
      if constexpr (kNarrow<T>) {
        return first_narrow_fault(x, rows, cols, ld);
      } else {
        const Status st = exact_matvec_t(x + r0 * ld + c0, rb, len, ld, y + r0, part);
        if (!st.ok()) return row_major_fault(x, rows, cols, ld, st);
        for (std::size_t j = 0; j < len; ++j) out[c0 + j] = FieldQ::add(out[c0 + j], part[j]);
      }
    }
  }
  return Status::success();
}

// ---- Quantized outputs and their magnitudes (OperandStats) ----------------

// One row's share of the statistics on the vector path: lanes of its L1 sum
// and of the max, plus what the scalar tails added.
struct RowStats {
  VD row, max;
  double row_tail, max_tail;
};

VEIL_SIMD_TARGET inline RowStats row_stats_begin() {
  return RowStats{V::zero(), V::zero(), 0.0, 0.0};
}

// Column sums stay elementwise, so they add in row order as on every path.
VEIL_SIMD_TARGET inline void stats_note_vec(RowStats& r, VD q, double* col) {
  const VD a = V::abs(q);
  r.row = V::add(r.row, a);
  r.max = V::max(a, r.max);
  if (col != nullptr) V::store(col, V::add(V::load(col), a));
}

VEIL_SIMD_TARGET inline void stats_end_row(const RowStats& r, OperandStats* st) {
  alignas(64) double lanes[V::W];
  V::store(lanes, r.max);
  double mx = r.max_tail;
  for (std::size_t k = 0; k < V::W; ++k) mx = vmax(lanes[k], mx);
  st->max_abs = vmax(mx, st->max_abs);
  st->row_l1_max = vmax(hsum(r.row) + r.row_tail, st->row_l1_max);
}

// Quantizing kernels write float64 or, when the limit is below 2^23, narrow
// float32 outputs (TOut): the values are exact either way, and the statistics
// and next-layer dots are taken from the float64 values in registers, so
// nothing but the stores depends on TOut.
template <class TOut>
VEIL_SIMD_TARGET std::size_t simd_quantize(const double* x, std::size_t rows, std::size_t cols,
                                           std::size_t ldx, double two_f_s, Quantizer qz,
                                           TOut* out, std::size_t ldo, OperandStats* stats) {
  const VD two_f = V::dup(two_f_s);
  const VD lim = V::dup(qz.limit), nlim = V::dup(-qz.limit);
  const VD lim1 = V::dup(qz.limit1), nlim1 = V::dup(-qz.limit1);
  double* col = stats != nullptr ? stats->col_l1 : nullptr;
  const VD inf = V::dup(__builtin_inf());
  std::size_t sat = 0, non_finite = 0;
  stats_begin(stats, cols);
  for (std::size_t i = 0; i < rows; ++i) {
    const double* xr = x + i * ldx;
    TOut* orow = out + i * ldo;
    RowStats rs = row_stats_begin();
    std::size_t k = 0;
    for (; k + V::W <= cols; k += V::W) {
      const VD v = V::load(xr + k);
      // A NaN lane clamps to -(limit + 1) (maxpd returns its second operand),
      // so it counts once as saturated, as in quantize_input(); then it becomes 0.
      VD q = quantize_vec(V::mul(v, two_f), lim, nlim, lim1, nlim1, &sat);
      q = V::blend(V::eq(v, v), V::zero(), q);
      V::store(orow + k, q);
      if (stats != nullptr) {
        stats_note_vec(rs, q, col != nullptr ? col + k : nullptr);
        non_finite += V::count(V::mandnot(V::mtrue(), V::lt(V::abs(v), inf)));  // NaN too
      }
    }
    for (; k < cols; ++k) {
      const double xv = xr[k];  // one load: x may be host memory (docs/design.md §5)
      const double q = quantize_input(xv, two_f_s, qz, &sat);
      orow[k] = static_cast<TOut>(q);
      if (stats != nullptr) {
        stats_note(q, &rs.row_tail, &rs.max_tail, col != nullptr ? col + k : nullptr);
        non_finite += !is_finite(xv);
      }
    }
    if (stats != nullptr) stats_end_row(rs, stats);
  }
  if (stats != nullptr) stats->non_finite = non_finite;
  return sat;
}

template <class TOut>
VEIL_SIMD_TARGET PassResult forward_into(const ForwardPlan& p, TOut* a_next) {
  const ForwardArgs& a = p.args;
  const bool linear = is_piecewise_linear(a.act);
  const bool relu = a.act == Activation::relu;
  const VD two_f = V::dup(p.two_f);
  const VD lim = V::dup(p.qz.limit), nlim = V::dup(-p.qz.limit);
  const VD lim1 = V::dup(p.qz.limit1), nlim1 = V::dup(-p.qz.limit1);
  alignas(64) double zbuf[kChunk];
  PassResult res;
  Status mismatch;
  std::size_t sat = 0;  // a local, not res.saturated: stores to outputs could alias it
  OperandStats* stats = a_next != nullptr ? a.a_stats : nullptr;
  double* col_l1 = stats != nullptr ? stats->col_l1 : nullptr;
  stats_begin(stats, a.cols);
  const bool dots = a.next_dots[0] != nullptr;
  for (std::size_t i = p.row_begin; i < a.rows; ++i) {
    const double* zr = a.z + i * a.ld_z;
    double* zo = a.z_real != nullptr ? a.z_real + i * a.ld_z_real : nullptr;
    std::uint8_t* mo = a.relu_mask != nullptr ? a.relu_mask + i * a.ld_relu_mask : nullptr;
    TOut* ao = a_next != nullptr ? a_next + i * a.ld_a_next : nullptr;
    RowStats rs = row_stats_begin();
    std::uint64_t sum = 0;
    std::uint64_t dot[2] = {0, 0};
    for (std::size_t c0 = 0; c0 < a.cols; c0 += kChunk) {
      const std::size_t len = a.cols - c0 < kChunk ? a.cols - c0 : kChunk;
      double* zb = zo != nullptr ? zo + c0 : zbuf;
      const Status st =
          mo != nullptr
              ? check_dot_chunk<true, true>(zr + c0, a.s + c0, len, p.inv_scale, zb, i, c0, &sum,
                                            mo + c0)
              : check_dot_chunk<true>(zr + c0, a.s + c0, len, p.inv_scale, zb, i, c0, &sum);
      if (!st.ok()) {
        res.status = st;
        res.saturated = sat;
        return res;
      }
      if (ao == nullptr) continue;
      TOut* out = ao + c0;
      double* col = col_l1 != nullptr ? col_l1 + c0 : nullptr;
      std::size_t k = 0;
      if (linear) {
        for (; k + V::W <= len; k += V::W) {
          VD y = V::mul(V::load(zb + k), two_f);
          if (relu) y = V::max(y, V::zero());
          const VD q = quantize_vec(y, lim, nlim, lim1, nlim1, &sat);
          V::store(out + k, q);
          if (stats != nullptr) stats_note_vec(rs, q, col != nullptr ? col + k : nullptr);
        }
      }
      for (; k < len; ++k) {
        double y;
        if (linear) {
          y = zb[k] * p.two_f;
          if (relu) y = vmax(y, 0.0);
        } else {
          // Transcendental activations: the shared scalar code keeps paths identical.
          y = activated_scaled(a.act, zb[k], p.two_f);
        }
        const double q = quantize_scaled(y, p.qz, &sat);
        out[k] = static_cast<TOut>(q);
        if (stats != nullptr)
          stats_note(q, &rs.row_tail, &rs.max_tail, col != nullptr ? col + k : nullptr);
      }
      if (dots) {
        // The chunk of a_next just written is in L1: the next layer's row sums.
        bool done = false;
        if (p.next_limbs != nullptr) {
          const double* lp[2][3];
          for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 3; ++c) lp[r][c] = p.next_limbs + (3 * r + c) * a.cols + c0;
          done = small_dot_chunk<2>(out, lp, len, dot);
        }
        // A narrow a_next always has next_limbs (fused.cpp) and is small: done.
        if constexpr (!kNarrow<TOut>) {
          for (int r = 0; r < 2 && !done; ++r) {  // outputs are valid integers: cannot fail
            check_dot_chunk<false>(out, a.next_v[r] + c0, len, 0.0, nullptr, i, c0, &dot[r]);
          }
        }
      }
    }
    if (stats != nullptr) stats_end_row(rs, stats);
    if (dots) {
      a.next_dots[0][i] = dot[0];
      a.next_dots[1][i] = dot[1];
    }
    if (a.row_sums != nullptr) a.row_sums[i] = sum;
    if (a.expected != nullptr && sum != a.expected[i] && mismatch.ok()) {
      mismatch = Status::at(Fault::mismatch, i);
    }
  }
  res.status = mismatch;
  res.saturated = sat;
  return res;
}

VEIL_SIMD_TARGET PassResult simd_forward(const ForwardPlan& p) {
  const ForwardArgs& a = p.args;
  return a.a_next_narrow != nullptr ? forward_into(p, a.a_next_narrow) : forward_into(p, a.a_next);
}

template <class TOut>
VEIL_SIMD_TARGET PassResult backward_into(const BackwardPlan& p, TOut* dz_prev) {
  const BackwardArgs& a = p.args;
  const VD two_f = V::dup(p.two_f);
  const VD lim = V::dup(p.qz.limit), nlim = V::dup(-p.qz.limit);
  const VD lim1 = V::dup(p.qz.limit1), nlim1 = V::dup(-p.qz.limit1);
  alignas(64) double xbuf[kChunk];  // the chunk of dA * 2^-scale, as checked
  PassResult res;
  Status mismatch;
  std::size_t sat = 0;  // a local, not res.saturated: stores to outputs could alias it
  OperandStats* stats = dz_prev != nullptr ? a.dz_stats : nullptr;
  double* col_l1 = stats != nullptr ? stats->col_l1 : nullptr;
  stats_begin(stats, a.out_cols);
  for (std::size_t i = p.row_begin; i < a.rows; ++i) {
    const double* xr = a.da + i * a.ld_da;
    // The derivative's input: the previous layer's z, or its relu mask.
    const double* zp = dz_prev != nullptr && a.z_prev != nullptr ? a.z_prev + i * a.ld_z_prev
                                                                 : nullptr;
    const std::uint8_t* mp = dz_prev != nullptr && a.relu_mask_prev != nullptr
                                 ? a.relu_mask_prev + i * a.ld_relu_mask_prev
                                 : nullptr;
    TOut* go = dz_prev != nullptr ? dz_prev + i * a.ld_dz_prev : nullptr;
    RowStats rs = row_stats_begin();
    std::uint64_t sum = 0;
    for (std::size_t c0 = 0; c0 < a.cols; c0 += kChunk) {
      const std::size_t len = a.cols - c0 < kChunk ? a.cols - c0 : kChunk;
      // The gradient is taken from the values checked (xbuf), never from dA again.
      const bool emits = go != nullptr && c0 < a.out_cols;
      const Status st = emits ? check_dot_chunk<true>(xr + c0, a.t + c0, len, p.inv_scale, xbuf, i,
                                                     c0, &sum)
                              : check_dot_chunk<false>(xr + c0, a.t + c0, len, 0.0, nullptr, i,
                                                      c0, &sum);
      if (!st.ok()) {
        res.status = st;
        res.saturated = sat;
        return res;
      }
      if (!emits) continue;
      // The chunk is in L1 now: emit the gradient columns of this chunk.
      const std::size_t olen = a.out_cols - c0 < len ? a.out_cols - c0 : len;
      const double* x = xbuf;  // dA * 2^-scale
      const double* zc = zp != nullptr ? zp + c0 : nullptr;
      const std::uint8_t* mc = mp != nullptr ? mp + c0 : nullptr;
      TOut* out = go + c0;
      double* col = col_l1 != nullptr ? col_l1 + c0 : nullptr;
      std::size_t k = 0;
      if (is_piecewise_linear(a.act)) {
        const bool relu = a.act == Activation::relu;
        for (; k + V::W <= olen; k += V::W) {
          VD y = V::mul(V::load(x + k), two_f);
          if (relu) {
            const VM pos =
                mc != nullptr ? V::load_bytes(mc + k) : V::gt(V::load(zc + k), V::zero());
            y = V::blend(pos, V::zero(), y);
          }
          const VD q = quantize_vec(y, lim, nlim, lim1, nlim1, &sat);
          V::store(out + k, q);
          if (stats != nullptr) stats_note_vec(rs, q, col != nullptr ? col + k : nullptr);
        }
      }
      for (; k < olen; ++k) {
        const double y = x[k] * p.two_f;
        const double g =
            mc != nullptr ? gradient_masked(y, mc[k]) : gradient_scaled(a.act, y, zc[k]);
        const double q = quantize_scaled(g, p.qz, &sat);
        out[k] = static_cast<TOut>(q);
        if (stats != nullptr)
          stats_note(q, &rs.row_tail, &rs.max_tail, col != nullptr ? col + k : nullptr);
      }
    }
    if (stats != nullptr) stats_end_row(rs, stats);
    if (a.row_sums != nullptr) a.row_sums[i] = sum;
    if (a.expected != nullptr && sum != a.expected[i] && mismatch.ok()) {
      mismatch = Status::at(Fault::mismatch, i);
    }
  }
  res.status = mismatch;
  res.saturated = sat;
  return res;
}

VEIL_SIMD_TARGET PassResult simd_backward(const BackwardPlan& p) {
  const BackwardArgs& a = p.args;
  return a.dz_prev_narrow != nullptr ? backward_into(p, a.dz_prev_narrow)
                                     : backward_into(p, a.dz_prev);
}
