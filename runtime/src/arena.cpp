#include "arena.h"

#include <cstring>
#include <iterator>

namespace veil {

void Arena::reset(void* base, size_t size) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Keep the first block aligned even if the host hands us an odd base.
  uintptr_t b = reinterpret_cast<uintptr_t>(base);
  uintptr_t aligned = (b + kAlignment - 1) & ~static_cast<uintptr_t>(kAlignment - 1);
  size_t skip = static_cast<size_t>(aligned - b);
  base_ = aligned;
  size_ = (base == nullptr || size <= skip) ? 0 : (size - skip) & ~(kAlignment - 1);
  in_use_ = 0;
  free_.clear();
  used_.clear();
  if (size_ > 0) free_.emplace(0, size_);
}

void* Arena::allocate(size_t size, bool zero) {
  size_t need = size == 0 ? 1 : size;
  if (need > SIZE_MAX - (kAlignment - 1)) return nullptr;
  need = (need + kAlignment - 1) & ~(kAlignment - 1);

  size_t offset = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.begin();
    while (it != free_.end() && it->second < need) ++it;
    if (it == free_.end()) return nullptr;
    offset = it->first;
    size_t rest = it->second - need;
    free_.erase(it);
    if (rest > 0) free_.emplace(offset + need, rest);
    used_.emplace(offset, need);
    in_use_ += need;
  }
  void* p = reinterpret_cast<void*>(base_ + offset);
  // Zeroing happens outside the lock: blocks can be tens of MB.
  if (zero) std::memset(p, 0, need);
  return p;
}

void Arena::release(void* ptr) {
  if (ptr == nullptr) return;
  uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(mutex_);
  if (p < base_ || p >= base_ + size_) return;
  auto used = used_.find(static_cast<size_t>(p - base_));
  if (used == used_.end()) return;
  size_t offset = used->first;
  size_t length = used->second;
  used_.erase(used);
  in_use_ -= length;

  // Coalesce with the following and the preceding free blocks.
  auto next = free_.lower_bound(offset);
  if (next != free_.end() && offset + length == next->first) {
    length += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += length;
      return;
    }
  }
  free_.emplace(offset, length);
}

size_t Arena::bytes_in_use() {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

}  // namespace veil
