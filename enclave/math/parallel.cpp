#include "math/parallel.h"

namespace veil {
namespace math {

namespace {

constexpr std::size_t kMinBlockElements = std::size_t{1} << 14;
// How long an idle worker watches for the next job before it sleeps: some
// tens of microseconds, longer than a wake-up takes and far shorter than a
// device product. No pause instruction: in a virtual machine a pause loop
// makes the hypervisor take the CPU away.
constexpr unsigned kSpins = 1u << 15;

// The pool parallel_for uses on this thread; null inside a block, so that a
// nested call runs in order instead of waiting on its own pool.
thread_local WorkerPool* t_pool = nullptr;

}  // namespace

RowBlocks row_blocks(std::size_t rows, std::size_t row_elems, std::size_t min_rows) noexcept {
  const std::size_t by_count = (rows + kMaxBlocks - 1) / kMaxBlocks;
  const std::size_t elems = row_elems > 0 ? row_elems : 1;
  std::size_t by_size = (kMinBlockElements + elems - 1) / elems;
  if (by_size < min_rows) by_size = min_rows;
  const std::size_t per_block = by_count > by_size ? by_count : by_size;
  return RowBlocks{rows, per_block, (rows + per_block - 1) / per_block};
}

// Runs blocks of the posted job until none is left to take; holds lock on
// entry and on return.
void WorkerPool::work(std::unique_lock<std::mutex>& lock) {
  while (next_ < count_) {
    const std::size_t b = next_++;
    const BlockBody body = body_;
    void* const context = context_;
    lock.unlock();
    body(context, b);
    lock.lock();
    if (++finished_ == count_) done_.notify_one();
  }
}

bool WorkerPool::serve() noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  if (parked_ + 1 >= kMaxBlocks) return false;
  ++parked_;
  while (!stopped_) {
    work(lock);
    const std::uint64_t seen = jobs_.load();
    lock.unlock();
    for (unsigned i = 0; i < kSpins && jobs_.load(std::memory_order_relaxed) == seen; ++i) {
    }
    lock.lock();
    if (jobs_.load() == seen && !stopped_) wake_.wait(lock);
  }
  --parked_;
  return true;
}

void WorkerPool::stop() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  stopped_ = true;
  wake_.notify_all();
}

unsigned WorkerPool::parked() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return parked_;
}

// One job at a time: a session's calls are serialised (session.h), and only
// its calling thread posts jobs.
void WorkerPool::run(std::size_t count, BlockBody body, void* context) noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  body_ = body;
  context_ = context;
  count_ = count;
  next_ = finished_ = 0;
  jobs_.fetch_add(1);
  wake_.notify_all();
  work(lock);
  done_.wait(lock, [this] { return finished_ == count_; });
  count_ = next_ = finished_ = 0;
}

UsePool::UsePool(WorkerPool* pool) noexcept : previous_(t_pool) { t_pool = pool; }

UsePool::~UsePool() { t_pool = previous_; }

void parallel_for(std::size_t count, BlockBody body, void* context) noexcept {
  WorkerPool* pool = t_pool;
  if (pool == nullptr || count < 2) {
    for (std::size_t b = 0; b < count; ++b) body(context, b);
    return;
  }
  UsePool inside(nullptr);
  pool->run(count, body, context);
}

}  // namespace math
}  // namespace veil
