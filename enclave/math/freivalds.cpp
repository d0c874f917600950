#include "math/freivalds.h"

#include <type_traits>

#include "math/detail/blocked.h"
#include "math/detail/kernels.h"

namespace veil {
namespace math {

namespace {

using detail::matrix_ok;
using detail::vector_ok;

// Kernels see a one-row matrix; put the caller's row back into the status.
Status with_row(Status st, std::size_t row) noexcept {
  if (!st.ok()) st.row = row;
  return st;
}

// Narrow operands (float32) take the table's _f kernels.
template <class T>
constexpr bool kNarrow = std::is_same<T, float>::value;

// A row-wise product over the row blocks of parallel.h: each block writes its
// own rows of the outputs.
template <class Rows>
Status by_row_blocks(std::size_t rows, std::size_t cols, const Rows& rows_fn) noexcept {
  return detail::run_row_blocks(rows, cols, nullptr, 0,
                                [&](std::size_t r0, std::size_t r1, OperandStats*) {
                                  return PassResult{rows_fn(r0, r1), 0};
                                })
      .status;
}

// x^T y over column blocks (each block's sums cover every row, so no partial
// vectors are added up); the first range fault in row-major order is the one
// with the lowest row, and of those the one in the earliest block.
template <class T>
Status by_col_blocks(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                     const std::uint64_t* y, std::uint64_t* out) noexcept {
  const detail::Kernels& k = detail::active_kernels();
  const RowBlocks cb = row_blocks(cols, rows);
  Status st[kMaxBlocks];
  auto body = [&](std::size_t b) {
    const std::size_t c0 = cb.begin(b), width = cb.end(b) - c0;
    if constexpr (kNarrow<T>) st[b] = k.matvec_t_f(x + c0, rows, width, ld, y, out + c0);
    else st[b] = k.matvec_t(x + c0, rows, width, ld, y, out + c0);
    if (!st[b].ok() && st[b].col != Status::npos) st[b].col += c0;
  };
  parallel_for(cb.count, body);
  Status first;
  for (std::size_t b = 0; b < cb.count; ++b)
    if (!st[b].ok() && (first.ok() || st[b].row < first.row)) first = st[b];
  return first;
}

}  // namespace

template <class T>
Status matvec_mod(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                  const std::uint64_t* v, std::uint64_t* out) noexcept {
  if (!matrix_ok(x, rows, cols, ld) || !vector_ok(v, cols) || !vector_ok(out, rows)) {
    return Status::at(Fault::invalid_argument);
  }
  if (rows == 0) return Status::success();
  if (cols == 0) {
    for (std::size_t i = 0; i < rows; ++i) out[i] = 0;
    return Status::success();
  }
  const detail::Kernels& k = detail::active_kernels();
  return by_row_blocks(rows, cols, [&](std::size_t r0, std::size_t r1) {
    if constexpr (kNarrow<T>) return k.matvec_f(x + r0 * ld, r1 - r0, cols, ld, v, out + r0);
    else return k.matvec(x + r0 * ld, r1 - r0, cols, ld, v, out + r0);
  });
}

template <class T>
Status matvec2_mod(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                   const std::uint64_t* v1, const std::uint64_t* v2, std::uint64_t* out1,
                   std::uint64_t* out2) noexcept {
  if (!matrix_ok(x, rows, cols, ld) || !vector_ok(v1, cols) || !vector_ok(v2, cols) ||
      !vector_ok(out1, rows) || !vector_ok(out2, rows)) {
    return Status::at(Fault::invalid_argument);
  }
  if (rows == 0) return Status::success();
  if (cols == 0) {
    for (std::size_t i = 0; i < rows; ++i) out1[i] = out2[i] = 0;
    return Status::success();
  }
  const detail::Kernels& k = detail::active_kernels();
  return by_row_blocks(rows, cols, [&](std::size_t r0, std::size_t r1) {
    const T* xb = x + r0 * ld;
    if constexpr (kNarrow<T>) return k.matvec2_f(xb, r1 - r0, cols, ld, v1, v2, out1 + r0, out2 + r0);
    else return k.matvec2(xb, r1 - r0, cols, ld, v1, v2, out1 + r0, out2 + r0);
  });
}

template <class T>
Status matvec_t_mod(const T* x, std::size_t rows, std::size_t cols, std::size_t ld,
                    const std::uint64_t* y, std::uint64_t* out) noexcept {
  if (!matrix_ok(x, rows, cols, ld) || !vector_ok(y, rows) || !vector_ok(out, cols)) {
    return Status::at(Fault::invalid_argument);
  }
  if (cols == 0) return Status::success();
  if (rows == 0) {
    for (std::size_t j = 0; j < cols; ++j) out[j] = 0;
    return Status::success();
  }
  return by_col_blocks(x, rows, cols, ld, y, out);
}

// The two element types (freivalds.h).
template Status matvec_mod(const double*, std::size_t, std::size_t, std::size_t,
                           const std::uint64_t*, std::uint64_t*) noexcept;
template Status matvec_mod(const float*, std::size_t, std::size_t, std::size_t,
                           const std::uint64_t*, std::uint64_t*) noexcept;
template Status matvec2_mod(const double*, std::size_t, std::size_t, std::size_t,
                            const std::uint64_t*, const std::uint64_t*, std::uint64_t*,
                            std::uint64_t*) noexcept;
template Status matvec2_mod(const float*, std::size_t, std::size_t, std::size_t,
                            const std::uint64_t*, const std::uint64_t*, std::uint64_t*,
                            std::uint64_t*) noexcept;
template Status matvec_t_mod(const double*, std::size_t, std::size_t, std::size_t,
                             const std::uint64_t*, std::uint64_t*) noexcept;
template Status matvec_t_mod(const float*, std::size_t, std::size_t, std::size_t,
                             const std::uint64_t*, std::uint64_t*) noexcept;

Status fingerprint_check(const double* m, std::size_t rows, std::size_t cols, std::size_t ld,
                         const std::uint64_t* s, const std::uint64_t* v, const std::uint64_t* t,
                         const std::uint64_t* w) noexcept {
  if (!matrix_ok(m, rows, cols, ld) || !vector_ok(s, cols) || !vector_ok(v, rows) ||
      !vector_ok(t, rows) || !vector_ok(w, cols)) {
    return Status::at(Fault::invalid_argument);
  }
  const detail::Kernels& k = detail::active_kernels();
  Status mismatch;
  for (std::size_t i = 0; i < rows && cols != 0; ++i) {
    std::uint64_t ms = 0;
    const Status st = k.matvec(m + i * ld, 1, cols, ld, s, &ms);
    if (!st.ok()) return with_row(st, i);
    if (ms != v[i] && mismatch.ok()) mismatch = Status::at(Fault::mismatch, i);
  }
  if (!mismatch.ok()) return mismatch;
  // M^T t by column blocks: a small stack buffer instead of an allocation.
  constexpr std::size_t kBlock = 256;
  std::uint64_t buf[kBlock];
  for (std::size_t c0 = 0; c0 < cols; c0 += kBlock) {
    const std::size_t bw = cols - c0 < kBlock ? cols - c0 : kBlock;
    Status st = matvec_t_mod(m + c0, rows, bw, ld, t, buf);
    if (!st.ok()) {  // unreachable after the row pass, but never ignore a fault
      st.col += c0;
      return st;
    }
    for (std::size_t j = 0; j < bw; ++j) {
      if (buf[j] != w[c0 + j]) return Status::at(Fault::mismatch, Status::npos, c0 + j);
    }
  }
  return Status::success();
}

}  // namespace math
}  // namespace veil
