#pragma once
// Services the enclave takes from its platform: key material, logging and host
// memory it lends for device results. The only places where enclave code
// reaches beyond its own memory.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace veil::enclave {

/** Fill buf with n bytes from the platform's key source (oe_random). */
bool secure_random(void* buf, size_t n);

/** Send a formatted message to the host's log (ocall_log). Never pass secrets. */
void log_message(int level, const char* format, ...) __attribute__((format(printf, 2, 3)));

/** Overwrite memory that held secrets; not optimised away. */
void wipe(void* p, size_t n);

/** wipe() the elements of a vector. */
template <typename T>
void wipe(std::vector<T>& v) {
  if (!v.empty()) wipe(v.data(), v.size() * sizeof(T));
}
/**
 * Host memory the enclave lends to an ocall ([user_check] pointers,
 * docs/design.md §5): from oe_host_malloc, checked to lie outside the
 * enclave, grown as needed. Operands are copied in (copy_from) before the
 * ocall. The host may write a result at any time, so each element of one is
 * read once: by a fused pass, which checks and uses that one value, or by
 * copy_to, which gives every other reader an enclave copy. Both copies run in
 * parallel row blocks (math/parallel.h).
 */
class HostBuffer {
 public:
  HostBuffer() = default;
  ~HostBuffer();
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  /** Room for count values of T; false when the host gives none outside the enclave. */
  template <typename T>
  bool reserve(size_t count) {
    return count <= SIZE_MAX / sizeof(T) && reserve_bytes(count * sizeof(T));
  }
  template <typename T>
  T* data() const {
    return static_cast<T*>(data_);
  }
  void copy_to(void* out, size_t bytes) const;
  void copy_from(const void* in, size_t bytes);
  /** A host copy of count values of x; nullptr when count is 0 or the host gives no memory. */
  template <typename T>
  const T* lend(const T* x, size_t count) {
    if (count == 0 || !reserve<T>(count)) return nullptr;
    copy_from(x, count * sizeof(T));
    return data<T>();
  }

 private:
  bool reserve_bytes(size_t bytes);
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace veil::enclave
