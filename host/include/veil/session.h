#pragma once
/**
 * @file session.h
 * @brief A session: one protocol instance inside an enclave, with its own secrets.
 */
#include <cstddef>
#include <cstdint>
#include <string>

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
};

}  // namespace veil
