#include "platform.h"

#include <openenclave/enclave.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "math/parallel.h"

#include "veil_t.h"

namespace veil::enclave {

bool secure_random(void* buf, size_t n) { return oe_random(buf, n) == OE_OK; }

void log_message(int level, const char* format, ...) {
  char message[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof message, format, args);
  va_end(args);
  // A failed log ocall changes nothing the enclave relies on.
  (void)ocall_log(level, message);
}

// memset at full speed (megabytes of masks per slot), then an empty asm that
// claims to read the memory, so the compiler cannot drop the stores as dead.
void wipe(void* p, size_t n) {
  if (n == 0) return;  // p may be null then, which memset must not get
  std::memset(p, 0, n);
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

HostBuffer::~HostBuffer() { oe_host_free(data_); }

bool HostBuffer::reserve_bytes(size_t bytes) {
  if (bytes <= capacity_) return true;
  oe_host_free(data_);
  data_ = oe_host_malloc(bytes);
  if (data_ != nullptr && !oe_is_outside_enclave(data_, bytes)) {
    oe_host_free(data_);  // never let the host's data land in enclave memory
    data_ = nullptr;
  }
  capacity_ = data_ != nullptr ? bytes : 0;
  return data_ != nullptr;
}

namespace {

// memcpy in the row blocks of parallel.h (one byte a row).
void parallel_copy(void* to, const void* from, size_t bytes) {
  const math::RowBlocks rb = math::row_blocks(bytes, 1);
  auto copy = [&](size_t b) {
    std::memcpy(static_cast<char*>(to) + rb.begin(b), static_cast<const char*>(from) + rb.begin(b),
                rb.end(b) - rb.begin(b));
  };
  math::parallel_for(rb.count, copy);
}

}  // namespace

void HostBuffer::copy_to(void* out, size_t bytes) const { parallel_copy(out, data_, bytes); }

void HostBuffer::copy_from(const void* in, size_t bytes) { parallel_copy(data_, in, bytes); }

}  // namespace veil::enclave
