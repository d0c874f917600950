#pragma once
// Sessions inside the enclave: each holds one protocol instance with its own
// secrets, its counters and its last error message.
#include <cstdint>
#include <memory>
#include <mutex>

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
};

/** One session. Calls on a session are serialised by the table (see Guard). */
class Session {
 public:
  explicit Session(uint64_t id) : id_(id) {}

  uint64_t id() const { return id_; }
  bool aborted() const { return aborted_; }
  Counters& counters() { return counters_; }

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
  char last_error_[1024] = {0};
};

/** How many sessions one enclave holds at once. */
constexpr uint32_t kMaxSessions = 64;

/** Open a session; returns VEIL_OK and its id, or an error status. */
int open_session(uint64_t* id);
/** Close and wipe a session. */
int close_session(uint64_t id);

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
