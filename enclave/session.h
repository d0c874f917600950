#pragma once
// Sessions inside the enclave: each holds one protocol instance with its own
// secrets, its counters and its last error message.
#include <cstdint>
#include <memory>
#include <mutex>

#include "math/parallel.h"
#include "veil_t.h"

namespace veil::enclave {

/**
 * The protocol a session runs. A session holds at most one, for its whole
 * life: a second protocol needs a new session.
 */
class Protocol {
 public:
  enum class Kind { training, inference };
  virtual ~Protocol() = default;
  virtual Kind kind() const = 0;
};

/** Counters every protocol of a session adds to. */
struct Counters {
  uint64_t checks_passed = 0;
  uint64_t products = 0;
  uint64_t saturated = 0;
  // Trace of what a step costs beyond its passes (ecall_session_stats).
  uint64_t limb_splits = 0;        // products split into limbs (one product each)
  uint64_t max_abs_refreshes = 0;  // max |M| asked of the device (an O(n m) scan there)
  uint64_t update_operands_sent = 0;  // operands an update carried (none kept by the host)
  uint64_t audits = 0;             // weights read back and checked (O(n m) each)
};

/** One session. Calls on a session are serialised by the table (see Guard). */
class Session {
 public:
  explicit Session(uint64_t id) : id_(id) {}

  uint64_t id() const { return id_; }
  bool aborted() const { return aborted_; }
  Counters& counters() { return counters_; }
  /** The host threads lent to this session's passes (ecall_worker). */
  math::WorkerPool& workers() { return workers_; }

  /** Record a failure and return its status; a verification failure aborts. */
  int fail(int status, const char* format, ...) __attribute__((format(printf, 3, 4)));
  /** End the session without a verification failure (state no longer vouched for). */
  void abort() { aborted_ = true; }
  /** Drop every protocol's state (and its secrets) if the session has aborted. */
  int finish_call(int status);
  /** Copy the last error message (NUL-terminated, truncated). */
  void last_error(char* out, size_t capacity) const;

  /** The protocol this session runs, if it is P; else nullptr. */
  template <class P>
  P* protocol() const {
    return protocol_ && protocol_->kind() == P::kKind ? static_cast<P*>(protocol_.get())
                                                       : nullptr;
  }
  bool has_protocol() const { return protocol_ != nullptr; }
  /** Install the protocol that a successful configuration call created. */
  void set_protocol(std::unique_ptr<Protocol> p) { protocol_ = std::move(p); }

 private:
  uint64_t id_;
  std::unique_ptr<Protocol> protocol_;
  bool aborted_ = false;
  Counters counters_;
  math::WorkerPool workers_;
  char last_error_[1024] = {0};
};

/** How many sessions one enclave holds at once. */
constexpr uint32_t kMaxSessions = 64;

/** Open a session; returns VEIL_OK and its id, or an error status. */
int open_session(uint64_t* id);
/** Close and wipe a session; its workers return. */
int close_session(uint64_t id);
/** The open session `id`, or null; for its workers, which hold no call of it. */
std::shared_ptr<Session> find_session(uint64_t id);

/**
 * Exclusive access to a session for the length of one ecall. A second call on
 * the same session while one runs is refused (VEIL_ERR_ORDER), never queued.
 */
class Guard {
 public:
  explicit Guard(uint64_t id);
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  /** VEIL_OK when the session was found and is now held. */
  int status() const { return status_; }
  Session& session() { return *session_; }

 private:
  std::shared_ptr<Session> session_;
  int status_;
};

/** Record an error that belongs to no session (unknown id, bad arguments). */
int fail_without_session(int status, const char* format, ...) __attribute__((format(printf, 2, 3)));
/** True when the calling thread's last failure had no session to record it. */
bool last_failure_was_sessionless();
/** The last sessionless error of the calling thread. */
void last_sessionless_error(char* out, size_t capacity);

}  // namespace veil::enclave
