#pragma once
// The exactness planner: pure functions that decide whether a product the
// device computes in float64 is exact (every partial sum below 2^53) and sound
// to check mod q, and how to split an operand into limbs when one product
// would not be exact (docs/arithmetic.md). No state, no I/O: the step calls
// them with the bounds it tracks.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "math/fixed_point.h"

namespace veil::enclave {

constexpr double kExact = 9007199254740992.0;  // 2^53: every float64 integer below is exact
// Soundness needs every true product below q - 2^53 in magnitude, so that an
// error of a range-checked result cannot vanish mod q; 2^60 leaves room.
constexpr double kSoundLimit = 1152921504606846976.0;  // 2^60
constexpr int kMaxLimbs = 4;

inline int ceil_log2(uint64_t x) {
  int e = 0;
  while ((uint64_t{1} << e) < x) ++e;
  return e;
}

template <typename T>
inline double max_row_l1(const T* x, size_t rows, size_t cols) {
  double best = 0;
  for (size_t i = 0; i < rows; ++i) {
    double sum = 0;
    const T* row = x + i * cols;
    for (size_t j = 0; j < cols; ++j) sum += std::fabs(row[j]);
    best = std::max(best, sum);
  }
  return best;
}

template <typename T>
inline double max_col_l1(const T* x, size_t rows, size_t cols, std::vector<double>& scratch) {
  scratch.assign(cols, 0.0);
  for (size_t i = 0; i < rows; ++i) {
    const T* row = x + i * cols;
    for (size_t j = 0; j < cols; ++j) scratch[j] += std::fabs(row[j]);
  }
  double best = 0;
  for (double v : scratch) best = std::max(best, v);
  return best;
}

template <typename T>
inline double max_abs(const T* x, size_t n) {
  double best = 0;
  for (size_t i = 0; i < n; ++i) best = std::max(best, std::fabs(static_cast<double>(x[i])));
  return best;
}

// The largest row L1 norm a pass reported, if it is exact: a sum of `cols`
// integers of magnitude <= limit, plus `extra`, below 2^53 in any order. Then
// it equals max_row_l1() over the same rows bit for bit; otherwise -1.
inline double exact_row_l1(const math::OperandStats& st, size_t cols, double limit, double extra) {
  if (static_cast<double>(cols) * limit + extra >= kExact) return -1;
  return st.row_l1_max + extra;
}

// Split |x| into base-2^bits digits, keeping the sign on every digit, so that
// x = sum_t 2^(t*bits) * digit_t exactly and |digit_t| < 2^bits.
template <typename T>
inline void extract_limb(const T* x, size_t n, int bits, int index, T* out) {
  const double base = std::ldexp(1.0, bits);
  const double shift = std::ldexp(1.0, bits * index);
  for (size_t i = 0; i < n; ++i) {
    double mag = std::fabs(static_cast<double>(x[i]));
    double digit = std::fmod(std::floor(mag / shift), base);
    out[i] = static_cast<T>(x[i] < 0 ? -digit : digit);
  }
}

// Limb width and count so that each limb's product (row L1 <= cols * (2^bits - 1)
// times max |M|) stays exact; 0 limbs when even 1-bit limbs cannot.
struct LimbPlan {
  int bits = 0;
  int count = 0;
};

inline LimbPlan plan_limbs(double row_l1, double max_operand, size_t cols, double max_m) {
  if (row_l1 * max_m < kExact) return {53, 1};
  if (max_m <= 0) return {53, 1};
  double room = kExact / (static_cast<double>(cols) * max_m);
  int bits = static_cast<int>(std::floor(std::log2(room + 1.0)));
  while (bits > 0 && static_cast<double>(cols) * (std::ldexp(1.0, bits) - 1) * max_m >= kExact)
    --bits;
  if (bits < 1) return {};
  int operand_bits = static_cast<int>(std::ceil(std::log2(max_operand + 1.0)));
  return {bits, std::max(1, (operand_bits + bits - 1) / bits)};
}

}  // namespace veil::enclave
