#include "arena.h"

#include <cstring>
#include <iterator>

// Under AddressSanitizer (the fuzz build, docs/fuzzing.md) the arena tells ASan
// which bytes are handed out, so an access past a marshalled buffer is reported
// even though the whole arena is one mapping. Other builds compile this away.
#if defined(__SANITIZE_ADDRESS__)
#define VEIL_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VEIL_ARENA_ASAN 1
#endif
#endif
#if defined(VEIL_ARENA_ASAN)
#include <sanitizer/asan_interface.h>
#define VEIL_ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define VEIL_ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define VEIL_ARENA_POISON(p, n) ((void)(p), (void)(n))
#define VEIL_ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace veil {

void Arena::reset(void* base, size_t size) {
  std::lock_guard<std::mutex> lock(mutex_);
  // The old region may be unmapped and its addresses reused: leave it clean.
  VEIL_ARENA_UNPOISON(reinterpret_cast<void*>(base_), size_);
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
  VEIL_ARENA_POISON(reinterpret_cast<void*>(base_), size_);
}

void* Arena::allocate(size_t size, bool zero) {
  size_t need = size == 0 ? 1 : size;
  if (need > SIZE_MAX - (kAlignment - 1)) return nullptr;
  need = (need + kAlignment - 1) & ~(kAlignment - 1);
#if defined(VEIL_ARENA_ASAN)
  // A poisoned block after every buffer, so a read past one never lands in the next.
  if (need > SIZE_MAX - kAlignment) return nullptr;
  need += kAlignment;
#endif

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
  VEIL_ARENA_UNPOISON(p, need);
  // Zeroing happens outside the lock: blocks can be tens of MB.
  if (zero) std::memset(p, 0, need);
  VEIL_ARENA_POISON(static_cast<char*>(p) + size, need - size);  // slack and redzone
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
  VEIL_ARENA_POISON(reinterpret_cast<void*>(base_ + offset), length);

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
