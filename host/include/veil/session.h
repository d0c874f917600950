#pragma once
/**
 * @file session.h
 * @brief A session: one protocol instance inside an enclave, with its own secrets.
 */
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace veil {

class Enclave;

/** Counters the enclave keeps for a session. */
struct SessionStats {
  uint64_t step = 0;           ///< training steps completed
  uint64_t checks_passed = 0;  ///< Freivalds checks passed
  uint64_t products = 0;       ///< device products requested
  uint64_t saturated = 0;      ///< values clipped while quantizing
  int32_t lr_exp = 0;          ///< current learning-rate exponent k (rate 2^-k)
  bool aborted = false;        ///< true after an integrity failure
  uint32_t threads = 1;        ///< threads the session's passes run on (use_threads)
  // A trace of what steps cost beyond their passes:
  uint64_t limb_splits = 0;        ///< limb products (an operand split for exactness)
  uint64_t max_abs_refreshes = 0;  ///< max |M| asked of the device (an O(n m) scan)
  uint64_t update_operands_sent = 0;  ///< operands updates carried (not kept from a product)
  uint64_t audits = 0;             ///< weights read back and checked (O(n m) each)
};

/**
 * An open enclave session. Closing (the destructor) wipes its secrets inside the
 * enclave. Not thread-safe: use one session from one thread at a time.
 */
class Session {
 public:
  /** Open a session in enclave. @throws EnclaveError */
  explicit Session(Enclave& enclave);
  virtual ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /** The enclave-chosen session id (random, 64 bits). */
  uint64_t id() const noexcept { return id_; }
  /** The enclave this session lives in. */
  Enclave& enclave() const noexcept { return enclave_; }

  /** The enclave's counters for this session. */
  SessionStats stats() const;

  /**
   * Run the session's passes on `threads` threads: the calling one and
   * threads - 1 host threads lent to the enclave (they enter it and stay until
   * the session closes; docs/design.md §5). Results are bit-identical for any
   * count. Capped at limits::max_threads; lending only grows (a smaller count
   * than already lent changes nothing). Returns once the lent threads are
   * parked, so the next call uses them all.
   */
  void use_threads(unsigned threads);

 protected:
  /** Throw the veil::Error matching a bridge result and an enclave status. */
  [[noreturn]] void raise(const char* call, int oe_result, int status) const;
  /** Check a call's results; throw when either failed. */
  void check(const char* call, int oe_result, int status) const {
    if (oe_result != 0 || status != 0) raise(call, oe_result, status);
  }

 private:
  Enclave& enclave_;
  uint64_t id_ = 0;
  std::vector<std::thread> workers_;
  std::shared_ptr<std::atomic<unsigned>> workers_gone_;  // lent threads whose ecall returned
};

}  // namespace veil
