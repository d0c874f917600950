#pragma once
/**
 * @file blocked.h
 * Internal: a validated pass cut into the row blocks of parallel.h, and its
 * per-block results combined in block order: statuses as one pass over all
 * rows reports them, saturation counts summed, statistics merged.
 */

#include <cstddef>

#include "math/detail/scalar.h"
#include "math/fixed_point.h"
#include "math/parallel.h"
#include "math/status.h"

namespace veil {
namespace math {
namespace detail {

/** p + offset, keeping an absent (null) pointer absent. */
template <class T>
inline T* shifted(T* p, std::size_t offset) noexcept {
  return p != nullptr ? p + offset : p;
}

/**
 * The status of one pass from its blocks' (rows relative to each block): the
 * first range fault in block order, since a pass stops at a range fault but
 * goes on past a mismatch; else the first mismatch.
 */
inline Status merge_status(const Status* st, const RowBlocks& rb) noexcept {
  Status mismatch;
  for (std::size_t b = 0; b < rb.count; ++b) {
    Status s = st[b];
    if (s.ok()) continue;
    if (s.row != Status::npos) s.row += rb.begin(b);
    if (s.fault != Fault::mismatch) return s;
    if (mismatch.ok()) mismatch = s;
  }
  return mismatch;
}

/**
 * Runs pass(r0, r1, stats) -> PassResult on every row block of a pass over
 * `rows` rows of `row_elems` elements whose output has `stat_cols` columns,
 * and combines the blocks. stats (optional) is the caller's OperandStats.
 */
template <class Pass>
PassResult run_row_blocks(std::size_t rows, std::size_t row_elems, OperandStats* stats,
                          std::size_t stat_cols, const Pass& pass) noexcept {
  const bool cols_summed = stats != nullptr && stats->col_l1 != nullptr;
  RowBlocks rb = row_blocks(rows, row_elems);
  if (cols_summed && stats->col_scratch == nullptr) rb = RowBlocks{rows, rows, rows != 0 ? 1u : 0u};
  PassResult part[kMaxBlocks];
  OperandStats part_stats[kMaxBlocks];
  for (std::size_t b = 0; cols_summed && b < rb.count; ++b)
    part_stats[b].col_l1 = b == 0 ? stats->col_l1 : stats->col_scratch + (b - 1) * stat_cols;
  auto body = [&](std::size_t b) {
    part[b] = pass(rb.begin(b), rb.end(b), stats != nullptr ? &part_stats[b] : nullptr);
  };
  parallel_for(rb.count, body);
  Status st[kMaxBlocks];
  PassResult res;
  for (std::size_t b = 0; b < rb.count; ++b) {
    st[b] = part[b].status;
    res.saturated += part[b].saturated;
  }
  res.status = merge_status(st, rb);
  if (stats == nullptr) return res;
  stats_begin(stats, rb.count == 0 ? stat_cols : 0);
  for (std::size_t b = 0; b < rb.count; ++b) {
    stats->row_l1_max = vmax(part_stats[b].row_l1_max, stats->row_l1_max);
    stats->max_abs = vmax(part_stats[b].max_abs, stats->max_abs);
    stats->non_finite += part_stats[b].non_finite;
    for (std::size_t j = 0; b > 0 && cols_summed && j < stat_cols; ++j)
      stats->col_l1[j] += part_stats[b].col_l1[j];
  }
  return res;
}

}  // namespace detail
}  // namespace math
}  // namespace veil
