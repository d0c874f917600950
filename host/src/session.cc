#include "veil/session.h"

#include <cmath>
#include <string>

#include "bridge.h"
#include "veil/error.h"

namespace veil {

Session::Session(Enclave& enclave) : enclave_(enclave) {
  int status = VEIL_OK;
  oe_result_t result = ecall_open_session(enclave_.handle().enclave, &status, &id_);
  if (result != OE_OK || status != VEIL_OK)
    detail::raise_error(enclave_.handle().enclave, 0, "ecall_open_session", result, status);
}

Session::~Session() {
  int status = VEIL_OK;
  // Closing wipes the session's secrets; nothing useful can be done if it fails.
  (void)ecall_close_session(enclave_.handle().enclave, &status, id_);
}

void Session::raise(const char* call, int oe_result, int status) const {
  detail::raise_error(enclave_.handle().enclave, id_, call, oe_result, status);
}

SessionStats Session::stats() const {
  veil_session_stats_t raw{};
  int status = VEIL_OK;
  oe_result_t result = ecall_session_stats(enclave_.handle().enclave, &status, id_, &raw);
  if (result != OE_OK || status != VEIL_OK) raise("ecall_session_stats", result, status);
  SessionStats s;
  s.step = raw.step;
  s.checks_passed = raw.checks_passed;
  s.products = raw.products;
  s.saturated = raw.saturated;
  s.lr_exp = raw.lr_exp;
  s.aborted = raw.aborted != 0;
  return s;
}

}  // namespace veil
