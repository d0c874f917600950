#pragma once
// Sessions inside the enclave: each holds one protocol instance with its own
// secrets, its counters and its last error message.
#include <cstdint>
#include <memory>
#include <mutex>

#include "veil_t.h"

namespace veil::enclave {

class Training;
class Inference;

/** Counters every protocol of a session adds to. */
struct Counters {
  uint64_t checks_passed = 0;
  uint64_t products = 0;
  uint64_t saturated = 0;
};

/** One session. Calls on a session are serialised by the table (see Guard). */
class Session {
 public:
  explicit Session(uint64_t id);
  ~Session();

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

  std::unique_ptr<Training> training;
  std::unique_ptr<Inference> inference;       // private / verify-mode inference (inference.h)

 private:
  uint64_t id_;
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

/**
 * Both bridges (oeedger8r and runtime/edger) pass a NULL host pointer through
 * as NULL, whatever count came with it: ecalls refuse it before any use.
 */
inline bool missing(const void* p, size_t count = 1) { return p == nullptr && count > 0; }

/** Refuse a NULL argument: "call: name is NULL". */
inline int null_argument(Session& s, const char* call, const char* name) {
  return s.fail(VEIL_ERR_INVALID_ARGUMENT, "%s: %s is NULL", call, name);
}

/**
 * Opens an ecall body that needs a live session with `member` configured:
 * takes the session (as `s`) or returns the refusal, naming `call`, the
 * protocol and the ecall that configures it.
 */
#define VEIL_LIVE_SESSION(call, member, protocol, init)                                    \
  ::veil::enclave::Guard guard(session);                                                  \
  if (guard.status() != VEIL_OK) return guard.status();                                   \
  ::veil::enclave::Session& s = guard.session();                                          \
  if (s.aborted())                                                                        \
    return s.fail(VEIL_ERR_ABORTED, call ": the session was aborted by an earlier "        \
                                         "integrity failure; no further results leave it"); \
  if (!s.member)                                                                          \
    return s.fail(VEIL_ERR_ORDER, call ": " protocol " is not configured (call " init " first)");

/** Record an error that belongs to no session (unknown id, bad arguments). */
int fail_without_session(int status, const char* format, ...) __attribute__((format(printf, 2, 3)));
/** True when the calling thread's last failure had no session to record it. */
bool last_failure_was_sessionless();
/** The last sessionless error of the calling thread. */
void last_sessionless_error(char* out, size_t capacity);

}  // namespace veil::enclave
