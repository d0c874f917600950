#include "platform.h"

#include <openenclave/enclave.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

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

}  // namespace veil::enclave
