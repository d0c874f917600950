// The enclave arena allocator: first-fit over one fixed region, thread safe.
// Marshalling buffers for every ecall and ocall live here, which is what makes
// oe_is_within_enclave() true for them.
#ifndef VEIL_RUNTIME_ARENA_H
#define VEIL_RUNTIME_ARENA_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

namespace veil {

class Arena {
 public:
  /** Manage [base, base + size); drops every earlier allocation. */
  void reset(void* base, size_t size);

  /** size bytes (at least one), 64-byte aligned, zeroed if zero is set; NULL when
   *  no free block is large enough. */
  void* allocate(size_t size, bool zero);

  /** Return a block from allocate(); NULL and unknown pointers are ignored. */
  void release(void* ptr);

  /** Bytes currently handed out (tests and diagnostics). */
  size_t bytes_in_use();

 private:
  static constexpr size_t kAlignment = 64;

  std::mutex mutex_;
  uintptr_t base_ = 0;
  size_t size_ = 0;
  size_t in_use_ = 0;
  std::map<size_t, size_t> free_;  // offset -> length, never adjacent (coalesced)
  std::map<size_t, size_t> used_;  // offset -> length
};

}  // namespace veil

#endif  // VEIL_RUNTIME_ARENA_H
