#pragma once
// Services the enclave takes from its platform: key material and logging. The
// only two places where enclave code reaches beyond its own memory.
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

}  // namespace veil::enclave
