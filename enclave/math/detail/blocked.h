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

/**
 * Runs pass(r0, r1, stats) -> PassResult on every row block of a pass over
 * `rows` rows of `row_elems` elements whose output has `stat_cols` columns,
 * and combines the blocks in block order. stats (optional) is the caller's.
 * The status is that of one pass over all rows: a pass stops at a range fault
 * but goes on past a mismatch, so the first range fault, else the first
 * mismatch (pass() reports rows relative to its block).
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
  PassResult res;
  Status mismatch;
  if (stats != nullptr) stats_begin(stats, rb.count == 0 ? stat_cols : 0);
  for (std::size_t b = 0; b < rb.count; ++b) {
    Status st = part[b].status;
    res.saturated += part[b].saturated;
    if (st.row != Status::npos) st.row += rb.begin(b);
    if (!st.ok() && st.fault != Fault::mismatch && res.status.ok()) res.status = st;
    if (st.fault == Fault::mismatch && mismatch.ok()) mismatch = st;
    if (stats == nullptr) continue;
    stats->row_l1_max = vmax(part_stats[b].row_l1_max, stats->row_l1_max);
    stats->max_abs = vmax(part_stats[b].max_abs, stats->max_abs);
    stats->non_finite += part_stats[b].non_finite;
    for (std::size_t j = 0; b > 0 && cols_summed && j < stat_cols; ++j)
      stats->col_l1[j] += part_stats[b].col_l1[j];
  }
  if (res.status.ok()) res.status = mismatch;
  return res;
}

}  // namespace detail
}  // namespace math
}  // namespace veil
