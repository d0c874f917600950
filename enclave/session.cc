#include "session.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>

#include "platform.h"

namespace veil::enclave {
namespace {

struct Entry {
  std::shared_ptr<Session> session;
  bool busy = false;
};

std::mutex table_mutex;
std::map<uint64_t, Entry>& table() {
  static std::map<uint64_t, Entry> sessions;
  return sessions;
}

thread_local char sessionless_error[512];
// Which message the host should read after this thread's last failure.
thread_local bool last_failure_sessionless = false;

}  // namespace

int Session::fail(int status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(last_error_, sizeof last_error_, format, args);
  va_end(args);
  last_failure_sessionless = false;
  if (status == VEIL_ERR_VERIFICATION) {
    // An integrity failure ends the session: no further result may leave it.
    // The protocol object is dropped by the ecall layer once the failing call
    // has unwound (finish_call), never from inside it.
    aborted_ = true;
    log_message(3, "session aborted: %s", last_error_);
  }
  return status;
}

int Session::finish_call(int status) {
  if (aborted_) protocol_.reset();
  return status;
}

void Session::last_error(char* out, size_t capacity) const {
  if (capacity == 0) return;
  std::snprintf(out, capacity, "%s", last_error_);
}

int open_session(uint64_t* id) {
  std::lock_guard<std::mutex> lock(table_mutex);
  if (table().size() >= kMaxSessions)
    return fail_without_session(VEIL_ERR_RESOURCE, "all %u sessions are open; close one first",
                                kMaxSessions);
  uint64_t candidate = 0;
  // Random ids: a host cannot guess another session's id, and ids never repeat in practice.
  do {
    if (!secure_random(&candidate, sizeof candidate))
      return fail_without_session(VEIL_ERR_INTERNAL, "the platform's random source failed");
  } while (candidate == 0 || table().count(candidate));
  table()[candidate].session = std::make_shared<Session>(candidate);
  *id = candidate;
  return VEIL_OK;
}

int close_session(uint64_t id) {
  std::shared_ptr<Session> doomed;
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    auto it = table().find(id);
    if (it == table().end())
      return fail_without_session(VEIL_ERR_NO_SESSION, "session %#llx is not open",
                                  static_cast<unsigned long long>(id));
    if (it->second.busy)
      return fail_without_session(VEIL_ERR_ORDER, "session %#llx is running a call",
                                  static_cast<unsigned long long>(id));
    doomed = std::move(it->second.session);
    table().erase(it);
  }
  doomed->workers().stop();
  return VEIL_OK;  // the Session (and its secrets, wiped by their owners) dies with doomed
}

std::shared_ptr<Session> find_session(uint64_t id) {
  std::lock_guard<std::mutex> lock(table_mutex);
  auto it = table().find(id);
  return it == table().end() ? nullptr : it->second.session;
}

Guard::Guard(uint64_t id) : status_(VEIL_OK) {
  std::lock_guard<std::mutex> lock(table_mutex);
  auto it = table().find(id);
  if (it == table().end()) {
    status_ = fail_without_session(VEIL_ERR_NO_SESSION, "session %#llx is not open",
                                   static_cast<unsigned long long>(id));
    return;
  }
  if (it->second.busy) {
    status_ = fail_without_session(VEIL_ERR_ORDER,
                                   "session %#llx is already running a call; calls on one session "
                                   "must not overlap",
                                   static_cast<unsigned long long>(id));
    return;
  }
  it->second.busy = true;
  session_ = it->second.session;
}

Guard::~Guard() {
  if (!session_) return;
  std::lock_guard<std::mutex> lock(table_mutex);
  auto it = table().find(session_->id());
  if (it != table().end()) it->second.busy = false;
}

int fail_without_session(int status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(sessionless_error, sizeof sessionless_error, format, args);
  va_end(args);
  last_failure_sessionless = true;
  return status;
}

bool last_failure_was_sessionless() { return last_failure_sessionless; }

void last_sessionless_error(char* out, size_t capacity) {
  if (capacity == 0) return;
  std::snprintf(out, capacity, "%s", sessionless_error);
}

}  // namespace veil::enclave
