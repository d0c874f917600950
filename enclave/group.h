#pragma once
// One enclave's membership in a data-parallel run (docs/design.md §4.6). The
// enclaves of a run derive the same check vectors and one exchange key from a
// run key the user gives each of them. Each step they swap their fingerprint
// deltas through the untrusted hosts, sealed under the exchange key
// (AES-256-GCM): a host can neither read them (they would reveal s and t) nor
// alter, reorder or replay them without failing authentication.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "seal.h"
#include "session.h"

namespace veil::enclave {

/** What an exchange carries: the join's nonces, or a step's fingerprint deltas. */
enum class ExchangeKind : uint32_t { join = 1, step = 2 };

class Group {
 public:
  /** Bytes of the random nonce each enclave contributes to the run's epoch at join. */
  static constexpr size_t kNonceBytes = 16;
  /** Keys a run key yields, each under its own label. */
  enum class Derived : uint32_t { secrets = 1, exchange = 2 };
  /**
   * out (len <= 64 bytes) = AES-256-CTR keystream of the run key under the
   * label's IV: a PRF of the run key, so derived keys are independent.
   */
  static bool derive(const uint8_t run_key[kSealKeyBytes], Derived label, uint8_t* out,
                     size_t len);

  Group(uint32_t worker, uint32_t workers, const uint8_t exchange_key[kSealKeyBytes]);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  uint32_t worker() const { return worker_; }
  uint32_t workers() const { return workers_; }
  /** Every worker's join nonce, in worker order: binds step messages to this run's sessions. */
  void set_epoch(std::vector<uint8_t> epoch) { epoch_ = std::move(epoch); }

  /**
   * Seal `mine`, swap it with every worker through ocall_exchange and open
   * what came back: all receives one plaintext per worker, in worker order (this
   * worker's own is `mine`). A message that fails to open aborts the session
   * (VEIL_ERR_VERIFICATION, naming the worker it claims to come from); a host
   * that cannot deliver fails the call (VEIL_ERR_DEVICE) and changes nothing.
   * where: the step or call, for messages.
   */
  int exchange(Session& session, const char* where, ExchangeKind kind, uint64_t step,
               const std::vector<uint8_t>& mine, std::vector<std::vector<uint8_t>>* all) const;

 private:
  std::vector<uint8_t> associated_data(ExchangeKind kind, uint64_t step, uint32_t sender) const;

  uint32_t worker_;
  uint32_t workers_;
  uint8_t key_[kSealKeyBytes];
  std::vector<uint8_t> epoch_;
};

}  // namespace veil::enclave
