#include "veil/session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "bridge.h"
#include "veil/codes.h"
#include "veil/error.h"

namespace veil {

Session::Session(Enclave& enclave) : enclave_(enclave) {
  int status = VEIL_OK;
  oe_result_t result = ecall_open_session(enclave_.handle().enclave, &status, &id_);
  if (result != OE_OK || status != VEIL_OK)
    detail::raise_error(enclave_.handle().enclave, 0, "ecall_open_session", result, status);
}

Session::~Session() {
  {
    std::lock_guard<std::mutex> lock(enclave_.handle().unclosed_mutex);
    enclave_.handle().unclosed.erase(id_);
  }
  int status = VEIL_OK;
  // Closing wipes the session's secrets and releases its lent threads.
  oe_result_t result = ecall_close_session(enclave_.handle().enclave, &status, id_);
  if (result != OE_OK || status != VEIL_OK) {
    // Not closed now (inside an ocall: a reentrant ecall; or an aborted enclave):
    // the enclave closes it before it terminates, and its threads then leave.
    std::lock_guard<std::mutex> lock(enclave_.handle().unclosed_mutex);
    enclave_.handle().unclosed.insert(id_);
    for (std::thread& t : workers_) t.detach();
    return;
  }
  for (std::thread& t : workers_) t.join();
}

void Session::use_threads(unsigned threads) {
  const unsigned wanted = std::min<unsigned>(std::max(threads, 1u), limits::max_threads);
  if (!workers_gone_) workers_gone_ = std::make_shared<std::atomic<unsigned>>(0);
  oe_enclave_t* enclave = enclave_.handle().enclave;
  {
    std::lock_guard<std::mutex> lock(enclave_.handle().unclosed_mutex);
    enclave_.handle().unclosed.insert(id_);
  }
  while (1 + workers_.size() < wanted) {
    workers_.emplace_back([enclave, id = id_, gone = workers_gone_] {
      int status = VEIL_OK;
      // Returns when the session closes, or at once if the enclave has no room.
      (void)ecall_worker(enclave, &status, id);
      gone->fetch_add(1);
    });
  }
  // Wait until every lent thread is parked or has given up.
  for (int i = 0; i < 10000; ++i) {
    if (stats().threads + workers_gone_->load() >= 1 + workers_.size()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
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
  s.threads = raw.threads;
  s.limb_splits = raw.limb_splits;
  s.max_abs_refreshes = raw.max_abs_refreshes;
  s.update_operands_sent = raw.update_operands_sent;
  s.audits = raw.audits;
  return s;
}

}  // namespace veil
