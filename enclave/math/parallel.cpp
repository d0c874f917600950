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

RowBlocks row_blocks(std::size_t rows, std::size_t row_elems) noexcept {
  RowBlocks b;
  b.rows = rows;
  const std::size_t elems = row_elems == 0 ? 1 : row_elems;
  const std::size_t by_count = (rows + kMaxBlocks - 1) / kMaxBlocks;
  const std::size_t by_size = (kMinBlockElements + elems - 1) / elems;
  b.per_block = by_count > by_size ? by_count : by_size;
  if (b.per_block == 0) b.per_block = 1;
  b.count = (rows + b.per_block - 1) / b.per_block;
  return b;
}

bool WorkerPool::take(std::size_t* block) {
  if (next_ >= count_) return false;
  *block = next_++;
  return true;
}

bool WorkerPool::serve() noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  if (parked_ + 1 >= kMaxBlocks) return false;
  ++parked_;
  while (!stopped_) {
    std::size_t b = 0;
    if (!take(&b)) {
      const std::uint64_t seen = jobs_.load();
      lock.unlock();
      for (unsigned i = 0; i < kSpins && jobs_.load(std::memory_order_relaxed) == seen; ++i) {
      }
      lock.lock();
      if (jobs_.load() == seen && !stopped_) wake_.wait(lock);
      continue;
    }
    const BlockBody body = body_;
    void* const context = context_;
    lock.unlock();
    body(context, b);
    lock.lock();
    if (++finished_ == count_) done_.notify_one();
  }
  --parked_;
  return true;
}

void WorkerPool::stop() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
  }
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
  lock.unlock();
  wake_.notify_all();
  lock.lock();
  std::size_t b = 0;
  while (take(&b)) {
    lock.unlock();
    body(context, b);
    lock.lock();
    ++finished_;
  }
  done_.wait(lock, [this] { return finished_ == count_; });
  body_ = nullptr;
  context_ = nullptr;
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
