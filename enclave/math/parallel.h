#pragma once
/**
 * @file parallel.h
 * The enclave's one parallel primitive (docs/design.md §5, "Threads").
 *
 * The enclave creates no threads. Host threads lend themselves to a session
 * (ecall_worker) and park in its WorkerPool; while a call of that session
 * runs, parallel_for hands the blocks of a pass to the calling thread and the
 * parked workers. Without a pool (or with no worker parked) it runs the
 * blocks in order on the calling thread.
 *
 * Determinism: a pass cuts its rows with row_blocks(), which depends on the
 * shape alone, never on how many threads there are; each block writes only
 * its own rows (or its own scratch), and the caller combines per-block
 * results in block order. So every result, check and error report is
 * bit-identical for any number of workers.
 */

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace veil {
namespace math {

/** Most blocks a pass is cut into: per-block scratch is bounded by it. */
constexpr std::size_t kMaxBlocks = 16;

/** Rows [begin(b), end(b)) of block b, for b in [0, count). */
struct RowBlocks {
  std::size_t rows = 0;
  std::size_t per_block = 1;
  std::size_t count = 0;
  std::size_t begin(std::size_t b) const noexcept { return b * per_block; }
  std::size_t end(std::size_t b) const noexcept {
    return rows - begin(b) < per_block ? rows : begin(b) + per_block;
  }
};

/**
 * The partition of `rows` rows of `row_elems` elements each: at most
 * kMaxBlocks blocks of at least about 16 Ki elements and min_rows rows
 * (smaller blocks cost more to hand out than they save). A function of the
 * shape only.
 */
RowBlocks row_blocks(std::size_t rows, std::size_t row_elems, std::size_t min_rows = 1) noexcept;

/** What a block runs: body(context, block). */
using BlockBody = void (*)(void* context, std::size_t block);

/** The host threads a session has lent to the enclave. */
class WorkerPool {
 public:
  /**
   * Park the calling thread: it runs blocks of posted jobs until stop(), then
   * returns true. Returns false at once when kMaxBlocks - 1 workers are
   * parked already (more could never have a block to run).
   */
  bool serve() noexcept;
  /** Release every parked worker; any later serve() returns at once. */
  void stop() noexcept;
  /** Workers parked now. */
  unsigned parked() noexcept;
  /** Run body on every block in [0, count) with the workers; return when all are done. */
  void run(std::size_t count, BlockBody body, void* context) noexcept;

 private:
  void work(std::unique_lock<std::mutex>& lock);
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  // Jobs posted so far: an idle worker watches it for a moment before it
  // sleeps, since a step posts its passes back to back.
  std::atomic<std::uint64_t> jobs_{0};
  // The job being run, all under mutex_. Blocks are taken in order.
  BlockBody body_ = nullptr;
  void* context_ = nullptr;
  std::size_t count_ = 0, next_ = 0, finished_ = 0;
  unsigned parked_ = 0;
  bool stopped_ = false;
};

/** While alive, parallel_for on this thread uses `pool` (nullptr: none). */
class UsePool {
 public:
  explicit UsePool(WorkerPool* pool) noexcept;
  ~UsePool();
  UsePool(const UsePool&) = delete;
  UsePool& operator=(const UsePool&) = delete;

 private:
  WorkerPool* previous_;
};

/**
 * body(context, b) once for every b in [0, count), on the calling thread and
 * the workers of the pool in use; returns when every block is done. Which
 * thread runs a block is unspecified. A body must not call parallel_for
 * itself (nested calls run in order on their thread).
 */
void parallel_for(std::size_t count, BlockBody body, void* context) noexcept;

/** parallel_for with a callable: f(b). */
template <class F>
void parallel_for(std::size_t count, F& f) noexcept {
  parallel_for(count, [](void* c, std::size_t b) { (*static_cast<F*>(c))(b); }, &f);
}

}  // namespace math
}  // namespace veil
