#include "platform.h"

#include <openenclave/enclave.h>

#include <cstdarg>
#include <cstdio>

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

void wipe(void* p, size_t n) {
  volatile unsigned char* bytes = static_cast<volatile unsigned char*>(p);
  while (n--) *bytes++ = 0;
}

}  // namespace veil::enclave
