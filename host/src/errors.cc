#include <string>

#include "bridge.h"
#include "veil/codes.h"
#include "veil/error.h"

namespace veil::detail {

static const char* status_name(int status) {
  for (const StatusName* s = kStatusNames; s->name; ++s)
    if (s->value == status) return s->name;
  return "unknown veil status";
}

std::string last_error(oe_enclave_t* enclave, uint64_t session) {
  char message[1024] = {0};
  int status = VEIL_OK;
  oe_result_t result = ecall_last_error(enclave, &status, session, message, sizeof message);
  if (result != OE_OK || status != VEIL_OK) return std::string();
  message[sizeof message - 1] = '\0';
  return message;
}

void throw_call_error(const char* call, int oe_result, int status, const std::string& message,
                      const std::string& device_message) {
  if (oe_result != OE_OK) {
    throw EnclaveError(std::string(call) + " failed at the enclave boundary: " +
                           oe_result_str(static_cast<oe_result_t>(oe_result)),
                       -1, oe_result);
  }
  std::string what = std::string(call) + ": " + status_name(status);
  if (!message.empty()) what += ": " + message;
  if (!device_message.empty()) what += " (device: " + device_message + ")";
  switch (status) {
    case VEIL_ERR_INVALID_ARGUMENT: throw InputError(what, status, oe_result);
    case VEIL_ERR_CONFIG: throw ConfigError(what, status, oe_result);
    case VEIL_ERR_VERIFICATION: throw VerificationError(what, status, oe_result);
    case VEIL_ERR_ORDER:
    case VEIL_ERR_ABORTED: throw ProtocolError(what, status, oe_result);
    case VEIL_ERR_DEVICE: throw DeviceError(what, status, oe_result);
    default: throw EnclaveError(what, status, oe_result);
  }
}

void raise_error(oe_enclave_t* enclave, uint64_t session, const char* call, int oe_result,
                 int status) {
  if (oe_result != OE_OK) throw_call_error(call, oe_result, status, "");
  throw_call_error(call, oe_result, status, last_error(enclave, session),
                   status == VEIL_ERR_DEVICE ? take_device_error(session) : "");
}

}  // namespace veil::detail
